"""A headless chromium for the console's browser tests (selenium, Debian's chromium and
chromedriver; nothing is downloaded): `Browser` remembers every URL it was on."""
import os
import shutil
import sys
import time
import traceback
import urllib.parse

os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never download a driver or a browser
try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    sys.exit("browser tests need selenium (python3 -m pip install selenium), chromium and chromium-driver (apt-get install chromium chromium-driver)")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# What chromium may answer about an element of a page being replaced by a navigation.
PAGE_REPLACED = "does not belong to the document"


class Browser:
    """A headless chromium on the console; remembers every URL it was on."""

    def __init__(self, base, shots=None):
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
            options.add_argument(argument)
        options.binary_location = CHROMIUM
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.driver.set_window_size(1280, 900)
        self.base, self.visited, self.shots = base, [], shots

    def wait(self, condition, message, timeout=10):
        # The URL is read only on a timeout: while a dialog is open, reading it would fail.
        try:
            return WebDriverWait(self.driver, timeout).until(condition, message)
        except TimeoutException:
            raise TimeoutException(f"{message} (on {self.driver.current_url})")

    def go(self, path):
        self.driver.get(self.base + path)
        self.visited.append(self.driver.current_url)

    def css(self, selector, scope=None):
        """The element, waited for (a missing one stops the test)."""
        if scope is not None:
            return scope.find_element(By.CSS_SELECTOR, selector)
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, selector)), f"no {selector}")

    def all(self, selector, scope=None):
        return (scope or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector, scope=None):
        found = self.all(selector, scope)
        return found[0].get_attribute("textContent") if found else ""

    def click(self, selector, scope=None, confirm=False):
        """Clicks and waits for the next page; `confirm` accepts the console's "are you sure?" dialog."""
        element = self.css(selector, scope)
        # Marks this page: a new page has no mark, a page being left says so (beforeunload fires
        # when its navigation starts). Read if chromium fails the click itself.
        self.driver.execute_script(
            "window.__patchbayLeaving = false;"
            "window.addEventListener('beforeunload', function () { window.__patchbayLeaving = true; });")
        if confirm:
            # A script click returns at once; a native one would fail on the dialog it opens.
            self.driver.execute_script("var e = arguments[0]; window.setTimeout(function () { e.click(); }, 0);", element)
            self.wait(EC.alert_is_present(), f"no confirmation after {selector}", timeout=3).accept()
        else:
            try:
                element.click()
            except WebDriverException as error:
                # Chromium can answer "Node with given id does not belong to the document" when the
                # click's own navigation replaced the page before the call returned (seen in CI
                # right after a screenshot's viewport change). Click again only if this page is
                # neither gone nor being left, so a form is never posted twice.
                if PAGE_REPLACED not in (error.msg or ""):
                    raise
                deadline = time.monotonic() + 1
                while self.still_here() is True and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.still_here() is True:
                    self.driver.execute_script("arguments[0].click();", element)
        self.wait(self.gone(element), f"{selector} led nowhere")
        self.visited.append(self.driver.current_url)

    def still_here(self):
        """True while the page `click` marked is shown and not being left; None if unreadable."""
        try:
            return self.driver.execute_script("return window.__patchbayLeaving === false;")
        except WebDriverException:
            return None

    @staticmethod
    def gone(element):
        """Like `staleness_of`, but chromium's "does not belong to the document", which it may
        answer for an element of a page being replaced, also counts as gone."""
        def condition(_driver):
            try:
                element.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as error:
                if PAGE_REPLACED in (error.msg or ""):
                    return True
                raise
        return condition

    def path(self):
        return urllib.parse.urlparse(self.driver.current_url).path

    def shoot(self, name):
        """Screenshots at 1280 and 375 px (the viewport pinned through DevTools, whatever the window
        manager allows); returns the page's scrollWidth at each width."""
        widths = {}
        for width in (1280, 375):
            self.driver.set_window_size(width, 900)
            metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            widths[width] = self.driver.execute_script("return document.documentElement.scrollWidth")
            metrics["height"] = max(900, min(4000, self.driver.execute_script("return document.body.scrollHeight")))
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            self.driver.save_screenshot(str(self.shots / f"{name}-{width}.png"))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.driver.set_window_size(1280, 900)
        return widths

    def sign_in(self, token):
        self.go("/console/sign-in")
        self.css("input#token").send_keys(token)
        self.click("button#sign-in")
        self.wait(lambda d: self.path().rstrip("/") == "/console", "sign-in did not lead to /console")


def failed_step(error):
    """The browser error with the test script's line it came from, for the failure's log line."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename.endswith("-test.py")]
    where = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    message = getattr(error, "msg", None) or next(iter(str(error).splitlines()), "") or type(error).__name__
    return f"{message}{where}"
