"""report.html as a browser shows it: headless Chromium (`apt-get install chromium`; .ci/run installs it)."""
import re
import shutil
import subprocess

import pytest

from lowdata.study.report import Layout, write_report

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(BROWSER is None, reason="needs headless Chromium: apt-get install -y chromium")
def test_the_report_in_a_browser_nests_its_notes_and_shows_its_images(tmp_path):
    layout = Layout("t", {"cnn": "cnn", "vit": "vit", "cct": "vit"}, {"cnn": "cnn", "vit": "vit"}, [50, 100, 200],
                    [0, 1], 18, num_classes=10)
    costs = {"cnn": (0.10, 4e12), "cct": (0.11, 1e12), "vit": (0.40, 2e12)}
    rows = [{"recipe": recipe, "labels": n, "seed": seed, "test_error": error + 0.02 * seed, "train_flops": flops,
             "train_acc": 1.0, "test_images": 2_000}
            for recipe, (error, flops) in costs.items() for n in (50, 100, 200) for seed in (0, 1)]
    write_report(layout, rows, tmp_path)
    # a copy that writes, into the page, what the browser laid out: each image's decoded width, and each
    # list item that holds a list of its own
    probe = ("<script>window.addEventListener('load', () => {document.body.dataset.images = [...document.images]"
             ".map(i => i.naturalWidth).join(','); document.body.dataset.nested = [...document.querySelectorAll("
             "'li > ul > li')].map(li => li.textContent.slice(0, 30)).join('|');});</script></body>")
    page = tmp_path / "probe.html"
    page.write_text((tmp_path / "report.html").read_text().replace("</body>", probe))
    dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    widths = [int(w) for w in re.search(r'data-images="([^"]*)"', dom).group(1).split(",")]
    assert len(widths) == 2 and all(width > 300 for width in widths)  # the curves and the cost plot, decoded
    nested = re.search(r'data-nested="([^"]*)"', dom).group(1).split("|")
    assert nested and all(item.startswith("Cheapest within noise of cnn") for item in nested)
    answer = dom[dom.index(">Answer</h2>"):dom.index("<img")]
    assert answer.count("<ul>") == 1 + len(nested)  # the notes sit inside their budget's line, not beside it
