package page_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// TestBrowserDAV drives headless Chromium through the calendar and contacts
// part of the page: the copy script runs under the page's policy (the
// buttons exist only if it does), each button puts its URL on the
// clipboard, and the profile's choice downloads the profile with CalDAV
// and CardDAV payloads, or the mail profile.
func TestBrowserDAV(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	cfg, err := config.Parse("dav.yaml", []byte(davPageYAML))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	dir := t.TempDir()
	downloads := filepath.Join(dir, "downloads")
	ctx := newBrowser(t, dir, 1100, 900)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	str := func(what, js string, opts ...chromedp.EvaluateOption) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, opts...))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	// The clipboard is read back by the page itself, which needs the
	// permission a person would give.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted, Origin: srv.URL,
		}); err != nil {
			t.Fatalf("granting %s: %v", perm, err)
		}
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	page := srv.URL + "/settings?lang=en&emailaddress=alice%40example.org"

	// 1. The copy buttons: made by the script (at the end of the body, so
	// before the load event), so present only when the policy let it run.
	step("page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("dav")))
	if n := str("buttons", `String(document.querySelectorAll('button.copy').length)`); n != "3" {
		t.Fatalf("%s copy buttons, want 3", n)
	}
	for _, c := range []struct{ kind, url string }{
		{"carddav", "https://dav.example.org:8443/card/alice/"},
		{"caldav", "https://dav.example.org/calendars/alice@example.org/"},
		{"jmap", "https://jmap.example.org/.well-known/jmap"},
	} {
		sel := fmt.Sprintf("tr[data-service=%s] button.copy", c.kind)
		step("copy "+c.kind, chromedp.Click(chromedp.CSS(sel)))
		if got := str("clipboard", `navigator.clipboard.readText()`, chromedp.EvalAwaitPromise); got != c.url {
			t.Errorf("%s: the clipboard holds %q, want %q", c.kind, got, c.url)
		}
		if label := str("label", fmt.Sprintf(`document.querySelector(%q).textContent`, sel)); label != "Copied" {
			t.Errorf("%s: the button says %q after copying", c.kind, label)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, dir, "settings-dav.png", png)
	step("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	// On a phone each service is a labelled block that fits the screen:
	// no URL makes the page scroll sideways.
	if w := str("width", `String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("on a 390 px phone the page is %s px wide", w)
	}
	if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, dir, "settings-dav-phone.png", png)
	step("desktop", chromedp.EmulateReset())

	// download clicks the install button and returns the profile the
	// browser downloads, with the URL it asked for.
	download := func(what string) ([]byte, string) {
		t.Helper()
		begin := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
		progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
		step(what, chromedp.Click(chromedp.ID("profile")))
		var u string
		for ev, err := range begin {
			if err != nil {
				t.Fatalf("%s: no download: %v", what, err)
			}
			u = ev.URL
			break
		}
		for ev, err := range progress {
			if err != nil {
				t.Fatalf("%s: the profile was not downloaded: %v", what, err)
			}
			switch ev.State {
			case browser.DownloadProgressStateCompleted:
				data, err := os.ReadFile(filepath.Join(downloads, ev.GUID))
				if err != nil {
					t.Fatal(err)
				}
				return data, u
			case browser.DownloadProgressStateCanceled:
				t.Fatalf("%s: the browser cancelled the download", what)
			}
		}
		return nil, ""
	}
	payloads := func(data []byte) []string {
		t.Helper()
		var top struct {
			PayloadContent []struct {
				PayloadType string `plist:"PayloadType"`
			} `plist:"PayloadContent"`
		}
		if _, err := plist.Unmarshal(data, &top); err != nil {
			t.Fatalf("downloaded profile: %v", err)
		}
		var out []string
		for _, p := range top.PayloadContent {
			out = append(out, p.PayloadType)
		}
		return out
	}

	// 2. Mail, calendars and contacts: the QR code follows the choice,
	// the profile carries both DAV payloads.
	mailQR := str("QR", `document.getElementById('qr').getAttribute('src')`)
	step("choose calendars", chromedp.Click(chromedp.CSS(`input[name=dav][value="1"]`)))
	if got, want := str("QR", `document.getElementById('qr').getAttribute('src')`),
		str("QR", `document.getElementById('qr').dataset.davSrc`); got != want || got == mailQR {
		t.Errorf("after choosing calendars the QR code is %q, want %q", got, want)
	}
	data, u := download("profile with calendars")
	if !strings.Contains(u, "dav=1") {
		t.Errorf("profile URL %q", u)
	}
	if got := strings.Join(payloads(data), " "); got != "com.apple.mail.managed com.apple.caldav.account com.apple.carddav.account" {
		t.Errorf("payloads %s", got)
	}
	testutil.Validate(t, "mobileconfig.py", data, "dav.mobileconfig", "--for-address", "alice@example.org",
		"--expect-caldav", "dav.example.org", "--expect-carddav", "dav.example.org")

	// 3. Mail only, the default of a fresh page.
	step("page again", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("profile")))
	data, u = download("mail profile")
	if !strings.Contains(u, "dav=0") {
		t.Errorf("profile URL %q", u)
	}
	if got := strings.Join(payloads(data), " "); got != "com.apple.mail.managed" {
		t.Errorf("payloads %s", got)
	}
	testutil.Validate(t, "mobileconfig.py", data, "mail.mobileconfig", "--for-address", "alice@example.org")

	// 4. On an iPhone the choice and the install button are on the first
	// screen, as the button alone is for a provider without calendars.
	step("iPhone", chromedp.Emulate(visitors[0]), chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("profile")))
	fold, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`document.getElementById('profile').getBoundingClientRect().bottom - window.innerHeight`))
	if err != nil || fold > 0 {
		t.Errorf("on an iPhone the install button ends %.0f px below the first screen (%v)", fold, err)
	}
	first, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	keepScreenshot(t, dir, "settings-dav-iphone-first-screen.png", first)
}
