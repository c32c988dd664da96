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
    out = capsys.readouterr().out
    assert "broken.png: cannot decode image" in out
    assert "loop.png:" in out and "empty: no images" in out
    assert "images of 2 sizes (12x12 (18), 20x20 (1))" in out
    assert len(out.strip().splitlines()) == 4
