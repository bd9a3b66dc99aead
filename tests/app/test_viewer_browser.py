"""The viewer page driven in headless Chromium: upload a phantom case, wait for its segmentation, check the canvas
shows the overlay and the page's volumes equal the API's, and save a screenshot."""

import io
import json
import shutil
import time
import urllib.request

import pytest

from conftest import PHANTOM_RUN_SHAPE, serving
from glioseg.datasets.cases import find_cases

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no Chromium here: `apt-get install chromium chromium-driver` (make test does so where it can)",
)


@pytest.fixture(scope="module")
def server(tiny_runs, tmp_path_factory):
    from glioseg.app.viewer import create_app
    from glioseg.inference.predict import load_model

    model = load_model(tiny_runs(0), "cpu")
    with serving(create_app(lambda: model, work=tmp_path_factory.mktemp("serve"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                     "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):  # fmt: skip
        options.add_argument(argument)  # WebGL2 on the CPU (NiiVue needs it)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(driver, script, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}; status: {driver.execute_script(STATUS)}")


STATUS = "return document.getElementById('status').textContent"


def overlay_pixels(driver) -> int:
    """Pixels of the canvas in a class colour (green edema, red core, yellow enhancing)."""
    from matplotlib.image import imread
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "gl")
    shot = (imread(io.BytesIO(canvas.screenshot_as_png)) * 255).astype(int)[..., :3]
    r, g, b = shot[..., 0], shot[..., 1], shot[..., 2]
    green = (g > r + 60) & (g > b + 60)
    red = (r > g + 60) & (r > b + 60)
    yellow = (r > 150) & (g > 150) & (b < r - 80)
    return int((green | red | yellow).sum())


def test_upload_segment_and_explore_in_chromium(server, browser, cohort_factory, tmp_path):
    from selenium.webdriver.common.by import By

    files = find_cases(cohort_factory("brats2021", cases=1, seed=9, shape=PHANTOM_RUN_SHAPE))[0]
    browser.get(server)
    wait_for(browser, "return document.body.dataset.started === 'yes'")
    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in files.images))
    browser.find_element(By.ID, "upload").click()
    job_id = wait_for(browser, "return document.body.dataset.ready")
    api = json.loads(urllib.request.urlopen(f"{server}/api/jobs/{job_id}").read())
    assert api["status"] == "done" and api["case_id"] == files.case_id
    assert api["volumes_ml"]["WT"] > 0  # this tiny model segments plenty: the overlay must show
    shown = {name: float(browser.find_element(By.ID, f"volume-{name}").text) for name in api["volumes_ml"]}
    assert shown == pytest.approx(api["volumes_ml"], abs=0.005)
    banner = browser.find_element(By.ID, "review")  # the review flag's banner, shown when the flag is up
    assert banner.is_displayed() == api["review"]["review_advised"]
    assert ("Review advised" in banner.text) == api["review"]["review_advised"]

    lesions = api["lesions"]
    assert lesions and lesions[0]["kind"] == "tumour"
    for lesion in (lesions[-1], lesions[0]):  # a click on a lesion's row moves the crosshair to it
        browser.find_element(By.ID, f"lesion-{lesion['kind']}-{lesion['lesion']}").click()
        position = browser.execute_script("return glioseg.nv.frac2mm(glioseg.nv.scene.crosshairPos)")
        assert position[:3] == pytest.approx(lesion["centre_mm"], abs=1.0)

    browser.execute_script("document.getElementById('opacity').value = 1; glioseg.nv && applyOverlayStyle();")
    time.sleep(0.5)
    browser.save_screenshot(str(tmp_path / "viewer.png"))
    with_overlay = overlay_pixels(browser)
    for name in ("edema", "core", "enhancing"):
        browser.find_element(By.ID, f"class-{name}").click()  # hide every class
    time.sleep(0.5)
    without_overlay = overlay_pixels(browser)
    assert with_overlay > 200, with_overlay
    assert without_overlay < with_overlay / 20, (with_overlay, without_overlay)
    download = browser.find_element(By.ID, "download").get_attribute("href")
    assert download.endswith(f"/api/jobs/{job_id}/files/segmentation")
