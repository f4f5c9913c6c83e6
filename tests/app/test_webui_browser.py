"""The web UI driven as a user drives it, in a real browser (Chromium from Debian's packages + selenium):
upload a toy-world clip, click on one object, preview the masks, generate; the page shows a playable stem
and the previewed mask covers the clicked object. Screenshots of each step stay in the test's tmp folder.

Needs `chromium` and `chromedriver` (scripts/setup.sh installs them with apt); without them the test skips
with the reason, and CI (SAGANET_REQUIRE_BROWSER=1, set by .ci/run) turns that skip into a failure.
"""

import urllib.request

import pytest

from browser_support import chrome, free_port, need_browser, wait_for
from saganet.app.demo import click_points, mask_iou
from saganet.io.masks import MaskSpec, load_masks
from saganet.io.video import decode_video
from saganet.io.writers import write_video
from saganet.toyworld.dataset import SPLITS, make_scene
from saganet.toyworld.world import WorldConfig


@pytest.mark.slow
def test_click_preview_generate_in_a_browser(tmp_path):
    need_browser()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from saganet.app.webui import launch

    sc = make_scene("multi_diff", SPLITS["test_diff"][1], 0)
    world = WorldConfig()
    clip = tmp_path / "scene.mp4"
    write_video(clip, sc.video, world.fps, audio=sc.mix, sample_rate=world.sample_rate)
    x, y = click_points(sc.masks[:, 0])[0]
    runs = tmp_path / "runs"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    port = free_port()
    app = launch(runs, port=port, variant="toy", segmenter="color", prevent_thread_lock=True)
    driver = chrome(2600)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        upload = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#video_in input[type=file]"), 60, "upload input")
        driver.save_screenshot(str(shots / "1_page.png"))
        upload.send_keys(str(clip))
        img = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#frame img"), 90, "the first frame", driver,
                    shots / "fail_frame.png")
        wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img), 30,
              "the frame image to load")
        driver.save_screenshot(str(shots / "2_frame.png"))
        # click on the object: page pixels from the image's natural pixels (selenium offsets from the centre)
        w, h, nw, nh = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return [r.width, r.height, arguments[0].naturalWidth, arguments[0].naturalHeight];", img)
        dx, dy = (x + 0.5) * w / nw - w / 2, (y + 0.5) * h / nh - h / 2
        ActionChains(driver).move_to_element_with_offset(img, dx, dy).click().perform()
        status = driver.find_element(By.CSS_SELECTOR, "#status textarea")
        wait_for(lambda: "1 click(s)" in status.get_attribute("value"), 60, "the click to register", driver,
              shots / "fail_click.png")
        driver.save_screenshot(str(shots / "3_clicked.png"))

        driver.find_element(By.CSS_SELECTOR, "#preview").click()
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#preview_video video").get_attribute("src"), 120,
              "the mask preview", driver, shots / "fail_preview.png")
        driver.save_screenshot(str(shots / "4_preview.png"))

        steps = driver.find_element(By.CSS_SELECTOR, "#steps input[type=number]")
        steps.clear()
        steps.send_keys("2")
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        wait_for(lambda: "stem(s) written" in status.get_attribute("value"), 300, "the generation", driver,
              shots / "fail_generate.png")
        play = wait_for(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, "#mix button")
                              if "play" in ((e.get_attribute("aria-label") or "") + (e.get_attribute("title") or "")
                                            + e.text).lower()], 60, "a play button on the mix", driver,
                     shots / "fail_audio.png")
        links = wait_for(lambda: [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#stems a")
                               if "stem_object1" in (a.get_attribute("href") or "")], 60, "the stem's link")
        driver.save_screenshot(str(shots / "5_generated.png"))
        assert play
        # the stem the page offers is real audio the browser can fetch
        with urllib.request.urlopen(links[0], timeout=30) as r:
            assert r.status == 200 and r.read(4) == b"fLaC"
    finally:
        driver.quit()
        app.close()

    # the previewed mask covers the clicked object (read back from the run folder)
    (rle,) = sorted(runs.glob("run_*/masks/object1_rle.json"))[:1]
    dec = decode_video(clip, clip_size=32, sync_size=32)
    (obj,) = load_masks([MaskSpec(rle, name="object1")], dec, keep_raw=True)
    raw = obj.raw.frames
    assert mask_iou(raw, sc.masks[0][: len(raw)]) >= 0.8
    assert sorted(p.name for p in shots.glob("[0-9]_*.png")) == [
        "1_page.png", "2_frame.png", "3_clicked.png", "4_preview.png", "5_generated.png"]
