from lowdata.cli import main


def test_data_check_lists_every_problem_at_once(tmp_path, image_folder_writer, capsys):
    root = image_folder_writer(tmp_path / "images", split=False)
    assert main(["data", "check", str(root)]) == 0
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    (root / "dog" / "loop.png").symlink_to("loop.png")
    (root / "empty").mkdir()
    (root / "frog" / "lonely").mkdir()
    image_folder_writer(tmp_path / "big", classes=("frog",), per_class=1, size=(20, 20), split=False)
    (tmp_path / "big" / "frog" / "000.png").rename(root / "frog" / "big.png")
    capsys.readouterr()
    assert main(["data", "check", str(root)]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "broken.png: cannot decode image" in out
    assert "empty: no images" in out and "loop.png" not in out  # a link loop is skipped, as a run skips it
    assert len(out.strip().splitlines()) == 2  # mixed sizes are no problem: a run resizes them
    assert "mixed sizes: a run resizes every image to 12x12 (the median shorter side)" in captured.err


def test_data_check_says_what_a_run_would_see(tmp_path, image_folder_writer, capsys):
    held_out = image_folder_writer(tmp_path / "flat", per_class=10, split=False)
    assert main(["data", "check", str(held_out)]) == 0
    err = capsys.readouterr().err
    assert "lowdata: classes: 3 (cat 10, dog 10, frog 10)" in err and "image sizes (W x H): 12x12 (30)" in err
    assert "stratified 20% of each class held out for testing: about 24 training and 6 test images" in err
    given = image_folder_writer(tmp_path / "split", per_class=6)
    assert main(["data", "check", str(given)]) == 0
    assert "split: train/ and test/ as given: 18 training and 9 test images" in capsys.readouterr().err


def test_a_run_says_at_its_start_what_it_trains_and_tests_on(tmp_path, capsys):
    from lowdata import train

    train(data="digits", labels=100, val_fraction=0.1, model="resnet20", epochs=1, out=str(tmp_path / "run"))
    line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("lowdata: data:"))
    assert line == ("lowdata: data: digits, 10 classes, 8x8x1: training on 90 labelled of 1,438 training images, "
                    "10 held out for validation; testing on 359 images")


def test_fifos_devices_and_dangling_links_follow_one_rule_in_check_and_train(tmp_path, image_folder_writer,
                                                                            capsys):
    """Named as images but not regular files: skipped and said once, by `data check` and by a run alike."""
    import os

    root = image_folder_writer(tmp_path / "images", per_class=6, split=False)
    os.mkfifo(root / "cat" / "pipe.png")
    (root / "dog" / "zero.png").symlink_to("/dev/zero")
    (root / "frog" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    capsys.readouterr()
    assert main(["data", "check", str(root)]) == 0
    err = capsys.readouterr().err
    assert "skipped 3 entries with an image's name that are not regular files" in err
    assert main(["train", "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped 3 entries with an image's name that are not regular files") == 1


def test_a_problem_line_has_no_double_space(tmp_path, image_folder_writer, capsys):
    root = image_folder_writer(tmp_path / "images", split=False)
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    assert main(["data", "check", str(root)]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if "broken.png" in line)
    assert "cannot decode image (" in line and "  " not in line
