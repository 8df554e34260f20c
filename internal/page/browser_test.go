package page_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// chromium finds the browser; .ci/deps installs Debian's chromium. Without
// it the test skips, or fails with MAILAUTOCONF_REQUIRE_ALL=1.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "headless Chromium not found", "apt-get install chromium, or set CHROMIUM; .ci/deps installs it")
	return ""
}

// browserRow is a table row as the browser renders it.
type browserRow struct {
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     string `json:"port"`
	Security string `json:"security"`
	Login    string `json:"login"`
}

const readRows = `Array.from(document.querySelectorAll('table.servers tbody tr'))
  .filter(tr => tr.querySelector('td.host'))
  .map(tr => ({
    protocol: tr.closest('table').dataset.protocol,
    host: tr.querySelector('td.host code').textContent.trim(),
    port: tr.querySelector('td.port').textContent.trim(),
    security: tr.querySelector('td.security').textContent.trim(),
    login: tr.querySelector('td.login').textContent.trim(),
  }))`

// wantRows is what the configuration says, in the page's order: IMAP, POP3,
// SMTP, each in configured order.
func wantRows(cfg *config.Config, login string) []browserRow {
	label := map[string]string{config.SecurityTLS: "SSL/TLS", config.SecurityStartTLS: "STARTTLS"}
	var out []browserRow
	for _, typ := range []string{config.TypeIMAP, config.TypePOP3, config.TypeSMTP} {
		p := &cfg.Providers[0]
		for i := range p.Servers {
			if s := p.Server(i); s.Type == typ {
				out = append(out, browserRow{typ, s.Host, strconv.Itoa(s.Port), label[s.Security], login})
			}
		}
	}
	return out
}

// newBrowser starts headless Chromium with a fresh profile under dir and a
// window of w×h pixels, and returns a context for its first tab that ends
// two minutes from now (the browser ends with the test).
func newBrowser(t *testing.T, dir string, w, h int) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(w, h),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	// The first call starts the browser and ties it to bctx; the timeout
	// below limits the steps, not the browser's life.
	if _, err := chromedp.CallBrowser(bctx, browser.GetVersion, cdp.Empty{}); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// keepScreenshot writes a screenshot to dir and, when
// MAILAUTOCONF_SCREENSHOTS names a directory, a copy there to look at.
func keepScreenshot(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", f)
	if keep := os.Getenv("MAILAUTOCONF_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowser drives real headless Chromium through the page as a person
// would: fill in the form, read the table, switch language, scan the QR
// code, install the profile, mistype the domain.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	cfg := testutil.Demo(t)
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
	str := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	tableRows := func() []browserRow {
		t.Helper()
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]browserRow](readRows))
		if err != nil {
			t.Fatalf("reading the table: %v", err)
		}
		return rows
	}
	// acceptLanguage makes the browser send this Accept-Language header.
	acceptLanguage := func(lang string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders,
				network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}})
			return err
		})
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		keepScreenshot(t, dir, name, png)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("network events: %v", err)
	}

	// 1. An English visitor fills in the form.
	step("form",
		acceptLanguage("en-US,en;q=0.9"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("emailaddress")),
		chromedp.SendKeys(chromedp.ID("emailaddress"), "alice@example.com"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("table.servers")),
	)
	if location := str("location", chromedp.Location()); !strings.Contains(location, "/settings?emailaddress=alice%40example.com") {
		t.Errorf("form went to %s", location)
	}
	if h1 := str("h1", chromedp.Text(chromedp.CSS("h1"))); h1 != "Settings for alice@example.com" {
		t.Errorf("h1 %q", h1)
	}
	want := wantRows(cfg, "alice@example.com")
	if rows := tableRows(); fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("table\n got %v\nwant %v", rows, want)
	}
	screenshot("settings-en.png")

	// 2. Switch to German: same servers, German words.
	step("language switch",
		chromedp.Click(chromedp.CSS(`a[hreflang="de"]`)),
		chromedp.WaitReady(chromedp.CSS(`html[lang="de"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.servers")),
	)
	h1 := str("h1", chromedp.Text(chromedp.CSS("h1")))
	th := str("column", chromedp.Text(chromedp.CSS("table.servers th:nth-child(3)")))
	if h1 != "Einstellungen für alice@example.com" || th != "Verschlüsselung" {
		t.Errorf("after switching: h1 %q, column %q", h1, th)
	}
	if rows := tableRows(); fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("German table\n got %v\nwant %v", rows, want)
	}
	step("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	screenshot("settings-de-phone.png")
	step("desktop", chromedp.EmulateReset())

	// 3. The QR code, as loaded by the browser, opens the profile link.
	qrSrc := str("QR", chromedp.Evaluate[string](`document.getElementById('qr').src`))
	profileHref := str("profile link", chromedp.Evaluate[string](`document.getElementById('profile').href`))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById('qr').naturalWidth`)); err != nil || w == 0 {
		t.Errorf("the browser did not load the QR code %s: %v", qrSrc, err)
	}
	if want := srv.URL + "/mobileconfig?emailaddress=alice%40example.com"; profileHref != want {
		t.Errorf("profile link %q, want %q", profileHref, want)
	}
	qr := testutil.Get(t, qrSrc, "")
	if got := decodeQR(t, qr.Body); got != profileHref {
		t.Errorf("QR code holds %q, the button links to %q", got, profileHref)
	}

	// 4. Follow the profile link: the browser downloads the profile.
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
	}); err != nil {
		t.Fatal(err)
	}
	responses := chromedp.Events(ctx, network.ResponseReceived)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	step("following the profile link", chromedp.Click(chromedp.ID("profile")))
	var contentType string
	for ev, err := range responses {
		if err != nil {
			t.Fatalf("no response for the profile link: %v", err)
		}
		if ev.Response.URL == profileHref {
			contentType = fmt.Sprint(ev.Response.Headers["Content-Type"])
			break
		}
	}
	if contentType != "application/x-apple-aspen-config" {
		t.Errorf("profile Content-Type %q, want application/x-apple-aspen-config", contentType)
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("the profile was not downloaded: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			data, err := os.ReadFile(filepath.Join(downloads, ev.GUID))
			if err != nil {
				t.Fatalf("downloaded profile: %v", err)
			}
			testutil.Validate(t, "mobileconfig.py", data, "profile.mobileconfig",
				"--for-address", "alice@example.com", "--content-type", contentType)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatalf("the browser cancelled the profile download")
		}
	}

	// 5. A German browser gets German without asking; a mistyped domain
	// gets a friendly 404.
	step("German visit",
		acceptLanguage("de-DE,de;q=0.9,en;q=0.5"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("emailaddress")),
	)
	if lang := str("lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "de" {
		t.Errorf("Accept-Language de: page in %q", lang)
	}
	step("typing", chromedp.SendKeys(chromedp.ID("emailaddress"), "bob@exmaple.com"))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("button[type=submit]")))
	if err != nil {
		t.Fatalf("submitting an unknown domain: %v", err)
	}
	problem := str("message", chromedp.Text(chromedp.ID("problem")))
	if resp.Status != http.StatusNotFound || !strings.Contains(problem, "Für diese Adresse veröffentlichen wir keine E-Mail-Einstellungen.") ||
		!strings.Contains(problem, "bob@exmaple.com") {
		t.Errorf("unknown domain: status %d, message %q", resp.Status, problem)
	}
	if rows := tableRows(); len(rows) != 0 {
		t.Errorf("unknown domain shows settings: %v", rows)
	}
	screenshot("unknown-domain.png")

	// 6. A hostile address is shown as text, and nothing of it runs.
	hostile := `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>@example.com`
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(srv.URL+"/settings?lang=en&emailaddress="+url.QueryEscape(hostile)))
	if err != nil {
		t.Fatalf("hostile address: %v", err)
	}
	shown := str("shown", chromedp.TextContent(chromedp.CSS("#problem code")))
	value := str("value", chromedp.Value(chromedp.ID("emailaddress")))
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	if err != nil {
		t.Fatal(err)
	}
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusBadRequest || shown != hostile || value != hostile || injected != 0 || pwned {
		t.Errorf("hostile address: status %d, shown %q, value %q, %d injected elements, script ran: %v",
			resp.Status, shown, value, injected, pwned)
	}
}
