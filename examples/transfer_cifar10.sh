#!/usr/bin/env bash
# Source -> target transfer on CIFAR-10, offline: a supervised source run on the six animal classes (all their
# training images), then the four vehicle classes fine-tuned at 100 and 500 labels, from scratch and from the
# source, with the same settings. Usage: examples/transfer_cifar10.sh CIFAR_DIR [OUT]
# (CIFAR_DIR holds train/<class>/*.jpg and test/<class>/*.jpg; about 100 min on 2 CPU cores, most of it the source.)
# QUICK=1 trains 1 source and 2 target epochs: a check that the commands run, not a measurement.
set -euo pipefail
cifar=${1:?usage: $0 CIFAR_DIR [OUT]}
out=${2:-runs/transfer-cifar10}
lowdata=${LOWDATA:-lowdata}
log="$out/runs.log"  # each run's key figures (its summary.json has the rest); progress stays on the terminal
mkdir -p "$out"
data="cifar10:$cifar"
animals=classes=bird,cat,deer,dog,frog,horse
vehicles=classes=airplane,automobile,ship,truck

source_epochs=30; epochs_100=200; epochs_500=100
if [[ "${QUICK:-0}" == 1 ]]; then source_epochs=1; epochs_100=2; epochs_500=2; fi

$lowdata train --data "$data" --model vit-tiny --epochs $source_epochs --out "$out/source" $animals eval_every=5 >>"$log"
# small label budgets get small batches, so that 100 labels still make 4 steps an epoch
for budget in "100 32 $epochs_100" "500 64 $epochs_500"; do
  read -r labels batch epochs <<<"$budget"
  common=(--data "$data" --labels "$labels" --batch-size "$batch" --epochs "$epochs" --model vit-tiny $vehicles eval_every=50)
  $lowdata train "${common[@]}" --out "$out/target-$labels-scratch" >>"$log"
  $lowdata train "${common[@]}" --init "$out/source" --out "$out/target-$labels-transfer" >>"$log"
done
$lowdata train --data "$data" --labels 100 --batch-size 32 --epochs $epochs_100 --model vit-tiny $vehicles eval_every=50 \
               --init "$out/source" --linear-probe --out "$out/target-100-probe" >>"$log"
for run in "$out"/target-*; do
  printf '%-40s %s\n' "$(basename "$run")" "$(python3 -c 'import json,sys; print(f"{json.load(open(sys.argv[1]))["test_acc"]:.1%}")' "$run/summary.json")"
done
