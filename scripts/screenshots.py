"""Screenshots for the README and closing notes: the viewer segmenting a real case with the shipped model, and
an HTML report, both in headless Chromium with no network.

    .venv/bin/python scripts/screenshots.py CASE_FOLDER REPORT_HTML [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import serving  # noqa: E402


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,950",
                     "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def viewer_screenshot(case: Path, out: Path) -> dict:
    from selenium.webdriver.common.by import By

    from glioseg.app.viewer import create_app
    from glioseg.inference.predict import load_model

    model = load_model()
    with tempfile.TemporaryDirectory() as work, serving(create_app(lambda: model, work=Path(work))) as url:
        driver = chrome()
        try:
            driver.get(url)
            while driver.execute_script("return document.body.dataset.started") != "yes":
                time.sleep(0.2)
            files = sorted(p.resolve() for p in case.iterdir() if "seg" not in p.name)
            driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in files))
            started = time.perf_counter()
            driver.find_element(By.ID, "upload").click()
            deadline = time.time() + 300
            while not driver.execute_script("return document.body.dataset.ready") and time.time() < deadline:
                time.sleep(0.3)
            seconds = time.perf_counter() - started
            time.sleep(1.5)
            driver.save_screenshot(str(out))
            volumes = driver.find_element(By.ID, "volumes").text
        finally:
            driver.quit()
    return {"seconds_to_overlay": round(seconds, 1), "volumes": volumes}


def report_screenshot(report: Path, out: Path) -> None:
    subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2600",
                    f"--screenshot={out}", report.resolve().as_uri()], check=True, capture_output=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    if not args.report.is_file():  # Chromium would screenshot its own error page and exit 0
        sys.exit(f"error: {args.report} does not exist; make it first (glioseg demo --real or glioseg report)")
    args.out.mkdir(parents=True, exist_ok=True)
    print(viewer_screenshot(args.case, args.out / "viewer_real_case.png"))
    report_screenshot(args.report, args.out / "report.png")
    print(f"wrote {args.out / 'viewer_real_case.png'} and {args.out / 'report.png'}")


if __name__ == "__main__":
    main()
