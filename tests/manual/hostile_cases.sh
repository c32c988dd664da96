#!/bin/bash
# The hostile cases of issue 41, each run through the CLI: prints one Markdown row per case (name, exit status,
# the line lowdata printed). docs/results.md#issue-41 holds its output. Usage: tests/manual/hostile_cases.sh [DIR]
# with lowdata and python on PATH (or LOWDATA=.venv/bin/lowdata PYTHON=.venv/bin/python). Not part of the suite:
# tests/test_ledger.py, test_settings_file.py, training/test_divergence.py and models/test_strict.py assert these.
L=${LOWDATA:-lowdata}
PY=${PYTHON:-python}
WORK=${1:-/tmp/lowdata-hostile}
export LOWDATA_CACHE=$WORK/cache
case_() { local name="$1"; shift; out=$("$@" 2>&1 >/dev/null | grep "lowdata: error\|skipped" | tail -1; exit ${PIPESTATUS[0]}); code=$?; echo "| $name | $code | ${out:0:300} |"; }
mkdir -p "$WORK" && cd "$WORK" && rm -rf work && mkdir work && cd work; $L train --data digits --model resnet20 --epochs 1 --out good labels=60 >/dev/null 2>&1
mkdir u1 && echo "lr: 0.1" > u1/config.yaml; case_ "train --out: user config.yaml" $L train --data digits --epochs 1 --out u1
mkdir u2 && echo '{"mine":1}' > u2/summary.json; case_ "train --out: user summary.json" $L train --data digits --epochs 1 --out u2
mkdir u3 && printf '{"epoch": 1}\n' > u3/metrics.jsonl; case_ "train --out: user metrics.jsonl (JSON lines)" $L train --data digits --epochs 1 --out u3
mkdir u4 && printf 'epoch,loss\n1,2\n' > u4/metrics.jsonl; case_ "train --out: user metrics.jsonl (not JSON)" $L train --data digits --epochs 1 --out u4
mkdir u5 && printf 'recipe,labels,seed,error\n' > u5/results.csv; case_ "study --out: user results.csv" $L study --data digits --sizes 30,60,120 --recipes cnn --budget-epochs 1 --out u5
$PY -c "import torch; torch.onnx.export(torch.nn.Linear(3,2),(torch.randn(1,3),),'mine.onnx',dynamo=True,verbose=False)" >/dev/null 2>&1
case_ "export --format onnx over a user's torch.onnx.export file" $L export --run good --format onnx --out mine.onnx
mkdir u6; printf 'recipe,labels,seed,error\n' > u6/t.csv; for n in 50 100 200; do for s in 0 1; do echo "cnn,$n,$s,0.3" >> u6/t.csv; echo "vit,$n,$s,0.5" >> u6/t.csv; done; done; echo "# Data-hunger study (mine)" > u6/report.md
case_ "fit --out: user report.md" $L fit u6/t.csv --out u6
mkdir im; $PY -c "from PIL import Image; Image.new('L',(8,8)).save('im/a.png')"
printf 'image,class,probability\nmine.png,cat,0.9\n' > p.csv; case_ "predict --out: user CSV with lowdata's header" $L predict --run good im --out p.csv
python3 -c "
lines=['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']+[f'a{i}: &a{i} [' + ', '.join([f'*a{i-1}']*10) + ']' for i in range(1,5)]
open('bomb.yaml','w').write('method_args:\n'+''.join('  '+l+'\n' for l in lines)+'epochs: 1\n')
open('deep.yaml','w').write('model_args: ' + '{a: '*10000 + '1' + '}'*10000 + '\n')
open('twice.yaml','w').write('labels: 100\nepochs: 1\nlabels: 50\n')
open('long.yaml','w').write('model: ' + 'x'*1000000 + '\n')
"
case_ "settings: nested aliases under method_args" $L train --data digits --config bomb.yaml --out b1
case_ "settings: 10,000-deep mapping" $L train --data digits --config deep.yaml --out b2
case_ "settings: a key given twice" $L train --data digits --config twice.yaml --out b3
case_ "settings: 1 MB string value" $L train --data digits --config long.yaml --out b4
case_ "train lr=1e308" $L train --data digits --model resnet20 --epochs 2 --out nan lr=1e308
LONG=$(printf 'x%.0s' $(seq 300))
case_ "train --out with a 300-byte name" $L train --data digits --epochs 1 --out $LONG/run
case_ "predict on a 300-byte path" $L predict --run good $LONG.png
case_ "data check on a 300-byte path" $L data check $LONG
printf 'recipe,labels,seed,error,error\ncnn,100,0,0.5,0.4\n' > dup.csv; case_ "fit: CSV with error,error" $L fit dup.csv --out fdup
cp -r good bad; $PY - <<'PY'
import torch
from safetensors.torch import load_file, save_file
from lowdata.ledger import Ledger
p='bad/checkpoint/model.safetensors'; s=load_file(p); s['fc.weight']=torch.zeros(11,64); save_file(s,p)
Ledger('bad/checkpoint').record_files()  # bytes of lowdata's, a model that changed (an upgrade, say)
PY
case_ "eval: weights of another shape" $L eval --run bad
case_ "predict: weights of another shape" $L predict --run bad im
case_ "export: weights of another shape" $L export --run bad --out bad-export
case_ "train --teacher FILE of another shape" $L train --data digits --epochs 1 --out t1 --teacher bad/checkpoint/model.safetensors teacher_model=resnet20
case_ "train --init FILE of another shape" $L train --data digits --epochs 1 --out t2 --init bad/checkpoint/model.safetensors
mkdir -p imgs/a imgs/b; $PY -c "
from PIL import Image
for c in 'ab':
  for i in range(6): Image.new('RGB',(12,12),(i*10,0,0)).save(f'imgs/{c}/{i}.png')
"; mkfifo imgs/a/pipe.png; ln -s /dev/zero imgs/b/zero.png
case_ "data check: a FIFO and a /dev/zero link" $L data check imgs
case_ "train: a FIFO and a /dev/zero link" $L train --data imgs --epochs 1 --out fifo-run
echo "notapng" > imgs/a/broken.png; out=$($L data check imgs 2>&1 | grep broken; exit ${PIPESTATUS[0]}); echo "| data check: undecodable image line | $? | ${out:0:200} |"; rm imgs/a/broken.png
$PY -c "
import os, torch
class R:
    def __reduce__(self): return (os.system, ('true',))
torch.save({'w': R()}, 'evil.pt')"
case_ "train --init a code-carrying pickle" $L train --data digits --epochs 1 --out t3 --init evil.pt
cp -r good nanrun; $PY - <<'PY'
import torch
from safetensors.torch import load_file, save_file
from lowdata.ledger import Ledger
p='nanrun/checkpoint/model.safetensors'; s=load_file(p); s['fc.weight']=s['fc.weight']*float('nan'); save_file(s,p)
Ledger('nanrun/checkpoint').record_files()
PY
case_ "predict on a run with NaN weights" $L predict --run nanrun im
case_ "export a run with NaN weights" $L export --run nanrun --out nan-export
cp -r good tm; $PY -c "
from safetensors.torch import load_file, save_file
p='tm/model/model.safetensors'; s=load_file(p); k=next(iter(s)); s[k]=s[k]+1; save_file(s,p)"
out=$($L eval --run tm 2>&1 >/dev/null | grep "tm/model"; exit ${PIPESTATUS[0]}); echo "| eval: a tampered model/ (timm copy) | $? | ${out:0:300} |"
cp -r good rs; rm rs/summary.json; echo '{"epoch": 9, "mine": 1}' >> rs/metrics.jsonl
case_ "train --resume: a line the user appended to metrics.jsonl" $L train --resume --out rs
