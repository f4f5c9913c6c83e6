"""The review page driven in a real browser (Chromium from Debian's packages + selenium): the first clip shows,
"reject" lands in verify.csv, and a click on the instrument re-segments the clip. Screenshots of each step go to
the test's temporary folder. Skips without chromium/chromedriver (fails with SAGANET_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from browser_support import chrome, free_port, need_browser, wait_for
from saganet.data.masks import mask_paths, read_mask_meta
from saganet.data.verify import TABLE_NAME, read_table, verify


@pytest.mark.slow
def test_review_page_in_a_browser(sms_root, fake_world, palette, tmp_path):
    need_browser()
    import gradio  # noqa: F401  (a dependency of the data extra: a missing one is an error, not a skip)
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from saganet.app.data_review import launch_review

    root = tmp_path / "sms"
    shutil.copytree(sms_root, root)
    verify(root, quiet=True)
    first = sorted(read_table(root / TABLE_NAME))[0]  # all accepted: the pending queue starts at the first id
    shots = tmp_path / "screenshots"
    shots.mkdir()
    port = free_port()
    app = launch_review(root, segmenter="color", palette=palette, port=port, prevent_thread_lock=True)
    driver = chrome(2200)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        info = lambda: driver.find_element(By.CSS_SELECTOR, "#info").text  # noqa: E731
        wait_for(lambda: first in info() and "decision accept" in info(), 90, "the first clip", driver,
              shots / "fail_first.png")
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#video video").get_attribute("src"), 60,
              "the preview video", driver, shots / "fail_video.png")
        driver.save_screenshot(str(shots / "1_clip.png"))
        driver.find_element(By.CSS_SELECTOR, "#reject").click()
        wait_for(lambda: "decision reject" in info(), 60, "the rejection", driver, shots / "fail_reject.png")
        driver.save_screenshot(str(shots / "2_rejected.png"))
        row = read_table(root / TABLE_NAME)[first]
        assert (row["review"], row["decision"], row["auto"]) == ("reject", "reject", "accept")

        # re-click: on the instrument in the frame shown (time 0)
        label, stem = first.split("/")
        truth = fake_world.truth[stem.split("_")[0]][int(stem.split("_")[1]) * 25 // 1000]
        ys, xs = np.nonzero(truth)
        k = int(np.argmin(np.hypot(xs - xs.mean(), ys - ys.mean())))  # on the object (a ring has a hole)
        x, y = float(xs[k]), float(ys[k])
        size = truth.shape[1]
        img = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#frame img"), 60, "the frame", driver,
                    shots / "fail_frame.png")
        wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img), 30,
              "the frame image to load")
        w, h, nw, nh = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return [r.width, r.height, arguments[0].naturalWidth, arguments[0].naturalHeight];", img)
        assert nw >= 320  # small frames are shown enlarged
        # page offset from the image centre of video pixel (x, y): the page shows `size` video pixels in `w`
        ActionChains(driver).move_to_element_with_offset(img, (x + 0.5) * w / size - w / 2,
                                                         (y + 0.5) * h / size - h / 2).click().perform()
        wait_for(lambda: "re-clicked" in info(), 90, "the re-segmentation", driver, shots / "fail_reclick.png")
        driver.save_screenshot(str(shots / "3_reclicked.png"))
    finally:
        driver.quit()
        app.close()
    meta = read_mask_meta(mask_paths(root, first)[1])
    assert meta["source"] == "click"
    row = read_table(root / TABLE_NAME)[first]
    assert row["review"] == "" and row["decision"] == "accept"  # a new mask clears the old review
    assert sorted(p.name for p in shots.glob("[0-9]_*.png")) == ["1_clip.png", "2_rejected.png", "3_reclicked.png"]
