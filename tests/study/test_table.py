import json

import numpy as np
import pytest

from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.study.fit import Curve
from lowdata.study.table import layout_for, read_results

TRUE = {"cnn": Curve(0.30, 3.0, 0.5), "vit": Curve(0.10, 8.0, 0.5)}  # the ViT overtakes the CNN at 625 labels


def write_csv(path, header, lines):
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def synthetic_lines(seeds=3, sizes=(100, 200, 400, 800, 1600), column="error"):
    rng = np.random.default_rng(0)
    lines = []
    for recipe, curve in TRUE.items():
        for n in sizes:
            for seed in range(seeds):
                error = float(curve.error(n)) + rng.normal(0, np.sqrt(1e-5 + 0.005 / n))
                lines.append(f"{recipe},{n},{seed},{error if column == 'error' else 1 - error:.6f}")
    return lines


def test_lowdata_fit_writes_the_report_files_from_a_csv(tmp_path, capsys):
    csv = write_csv(tmp_path / "results.csv", "recipe,labels,seed,error", synthetic_lines())
    assert main(["fit", str(csv), "--out", str(tmp_path / "out")]) == 0
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())
    for recipe, curve in TRUE.items():
        fitted = fits["recipes"][recipe]["fit"]
        sizes = np.array([100, 200, 400, 800, 1600])
        found = Curve(fitted["a"], fitted["b"], fitted["c"])
        assert np.abs(found.error(sizes) - curve.error(sizes)).max() < 0.01
        assert fitted["variance"]["from"] == "seeds" and fitted["a_interval"][0] <= fitted["a"] <= fitted["a_interval"][1]
    assert 400 < fits["crossovers"]["vit"]["labels"] < 1000
    assert (tmp_path / "out" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# Data-hunger study: results") and "30 results" in markdown
    assert "cnn: a=0." in capsys.readouterr().out


def test_accuracy_is_accepted_instead_of_error(tmp_path):
    by_error = read_results(write_csv(tmp_path / "e.csv", "recipe,labels,seed,error", synthetic_lines()))
    by_accuracy = read_results(write_csv(tmp_path / "a.csv", "recipe,labels,seed,accuracy",
                                         synthetic_lines(column="accuracy")))
    assert [r["test_error"] for r in by_accuracy] == pytest.approx([r["test_error"] for r in by_error], abs=1e-9)


def test_one_seed_and_three_sizes_report_no_interval(tmp_path):
    csv = write_csv(tmp_path / "r.csv", "recipe,labels,seed,error", synthetic_lines(seeds=1, sizes=(100, 400, 1600)))
    assert main(["fit", str(csv), "--out", str(tmp_path / "out"), "--exponent-prior", "0"]) == 0
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())
    assert fits["exponent_prior"]["strength"] == 0
    assert fits["recipes"]["vit"]["fit"]["a_interval"] is None
    assert fits["recipes"]["vit"]["predicted"]["2x"]["interval"] is None
    assert fits["multipliers"]["cnn"][0]["interval"] is None
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "interval not estimable: add seeds" in markdown and "[not estimable]" in markdown


@pytest.mark.parametrize("header, line, message", [
    ("recipe,labels,error", "cnn,100,0.5", "lacks the column seed"),
    ("recipe,labels,seed", "cnn,100,0", "error (or accuracy)"),
    ("recipe,labels,seed,accuracy", "cnn,100,0,55", "looks like a percentage"),
    ("recipe,labels,seed,error", "cnn,1.5,0,0.5", "labels must be a whole number"),
    ("recipe,labels,seed,error", "cnn,100,0,high", "error must be a number"),
    ("recipe,labels,seed,error", ",100,0,0.5", "the recipe is empty"),
    ("recipe,labels,seed,error,error", "cnn,100,0,0.5,0.4", "has the column 'error' twice (columns 4 and 5)"),
])
def test_bad_csv_files_name_the_problem(tmp_path, header, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_results(write_csv(tmp_path / "bad.csv", header, [line]))


def test_a_repeated_result_names_both_lines(tmp_path):
    csv = write_csv(tmp_path / "r.csv", "recipe,labels,seed,error", ["cnn,100,0,0.5", "vit,100,0,0.6", "cnn,100,0,0.4"])
    with pytest.raises(UsageError, match="line 4 repeats recipe cnn, 100 labels, seed 0 \\(first on line 2\\)"):
        read_results(csv)


def test_families_come_from_the_csv_or_the_built_in_recipes(tmp_path):
    rows = read_results(write_csv(tmp_path / "r.csv", "recipe,family,labels,seed,error",
                                  ["mine,cnn,100,0,0.5", "vit+mae,,100,0,0.5", "odd,,100,0,0.5"]))
    layout = layout_for(rows, "t", references=["mine"])
    assert layout.families == {"mine": "cnn", "vit+mae": "vit", "odd": "other"}
    assert layout.references == {"cnn": "mine", "vit": "vit"}
    with pytest.raises(UsageError, match="its family is unknown"):
        layout_for(rows, "t", references=["odd"])


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    csv = write_csv(tmp_path / "r.csv", "recipe,labels,seed,error", synthetic_lines())
    assert main(["fit", str(csv), "--out", str(tmp_path / "o"), "--exponent-prior", "-1"]) == 2
    assert "--exponent-prior must be 0 or more" in capsys.readouterr().err


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("recipe,labels,seed,error\n" + "\n".join(synthetic_lines()) + "\n").encode())
    rows = read_results(path)
    assert len(rows) == 30 and rows[0]["recipe"] == "cnn"


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, __import__("gzip").compress(b"recipe,labels,seed,error\n")])
def test_a_binary_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    assert main(["fit", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ("not a text CSV" in err or "not a readable CSV" in err)


def test_fit_out_that_is_a_file_is_refused_before_reading(tmp_path, capsys):
    csv = write_csv(tmp_path / "r.csv", "recipe,labels,seed,error", synthetic_lines())
    (tmp_path / "taken").write_text("mine")
    assert main(["fit", str(csv), "--out", str(tmp_path / "taken")]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "taken").read_text() == "mine"


def test_many_results_are_fitted_with_a_bounded_report(tmp_path, capsys):
    from lowdata.study.report import CELL_ROWS_SHOWN

    csv = write_csv(tmp_path / "r.csv", "recipe,labels,seed,error", synthetic_lines(seeds=200))  # 2,000 rows
    assert main(["fit", str(csv), "--out", str(tmp_path / "o")]) == 0
    assert "fitting 2,000 results of 2 recipes" in capsys.readouterr().err
    report = (tmp_path / "o" / "report.md").read_text()
    assert report.count("\n| cnn | ") + report.count("\n| vit | ") <= CELL_ROWS_SHOWN + 10
    assert f"… and {2000 - CELL_ROWS_SHOWN:,} more: every result is in results.csv." in report


def test_fit_shares_a_folder_with_the_csv_but_never_replaces_a_report_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    csv = write_csv(folder / "mine.csv", "recipe,labels,seed,error", synthetic_lines())
    assert main(["fit", str(csv), "--out", str(folder)]) == 0  # beside the user's CSV
    assert main(["fit", str(csv), "--out", str(folder)]) == 0  # its own report, replaced
    (folder / "report.md").write_text("# My notes\n")
    capsys.readouterr()
    assert main(["fit", str(csv), "--out", str(folder)]) == 2
    assert "holds report.md that lowdata did not write" in capsys.readouterr().err
    assert (folder / "report.md").read_text() == "# My notes\n"
