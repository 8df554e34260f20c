package page_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
	"golang.org/x/net/html"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// visitor is a device class as the page sees it: the User-Agent its
// browser sends and the size of its window.
type visitor struct {
	name string
	info device.Info
	// parts and hints are the order in which the visitor must see the
	// page's parts and the hints of its "auto" part.
	parts, hints []string
	// lead must be on the first screen, without scrolling.
	lead string
}

// Device makes a visitor usable with chromedp.Emulate.
func (v visitor) Device() device.Info { return v.info }

// User-Agents as the browsers of each class send them (Safari on iOS 17,
// Chrome on Android 14, Edge on Windows 11, Firefox on Linux), with the
// window each has: an iPhone 15's 390 px, a Pixel 7's 412 px, desktops.
const (
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	uaWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
	uaLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
)

// The page's parts: the profile first for Apple devices, and otherwise the
// order the page had before it knew devices.
var (
	appleFirst  = []string{"h1", "form", "apple", "auto", "incoming", "outgoing", "password", "explain"}
	todaysOrder = []string{"h1", "form", "auto", "incoming", "outgoing", "password", "apple", "explain"}
)

var visitors = []visitor{
	{"iphone", device.Info{Name: "iPhone", UserAgent: uaIPhone, Width: 390, Height: 844, Scale: 3, Mobile: true, Touch: true},
		appleFirst, []string{"general", "android", "outlook"}, "#profile"},
	{"android", device.Info{Name: "Android", UserAgent: uaAndroid, Width: 412, Height: 915, Scale: 2.625, Mobile: true, Touch: true},
		todaysOrder, []string{"android", "general", "outlook"}, `[data-hint="android"]`},
	{"windows", device.Info{Name: "Windows", UserAgent: uaWindows, Width: 1280, Height: 800, Scale: 1},
		todaysOrder, []string{"outlook", "general", "android"}, `[data-hint="outlook"]`},
	{"other", device.Info{Name: "Linux", UserAgent: uaLinux, Width: 1280, Height: 800, Scale: 1},
		todaysOrder, []string{"general", "android", "outlook"}, `[data-hint="general"]`},
}

// readParts names the blocks of the page's main element in the order the
// browser lays them out, with whether each is shown (has a size and is not
// hidden by style).
const readParts = `Array.from(document.querySelectorAll('main > *')).map(e => {
  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  let name = e.tagName.toLowerCase();
  if (e.matches('form.lookup')) name = 'form';
  else if (e.matches('div.auto')) name = 'auto';
  else if (e.matches('p.note')) name = 'password';
  else if (e.matches('section[aria-labelledby="h-incoming"]')) name = 'incoming';
  else if (e.matches('section[aria-labelledby="h-outgoing"]')) name = 'outgoing';
  else if (e.matches('section.apple')) name = 'apple';
  else if (e.matches('section.explain')) name = 'explain';
  return {name: name, top: r.top + window.scrollY, shown: r.height > 0 && s.display !== 'none' && s.visibility !== 'hidden'};
})`

// part is one block of the page as the browser lays it out.
type part struct {
	Name  string  `json:"name"`
	Top   float64 `json:"top"`
	Shown bool    `json:"shown"`
}

// TestBrowserDeviceOrder opens the settings page in headless Chromium as
// each device class, with its User-Agent and window size, and reads the
// order of the page's parts as laid out. The User-Agent only orders the
// page: every part is there and shown for every visitor. The screenshots
// (the first screen and the whole page of each) are kept with
// MAILAUTOCONF_SCREENSHOTS=DIR to be looked at.
func TestBrowserDeviceOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	dir := t.TempDir()
	ctx := newBrowser(t, dir, 1280, 800)
	for _, v := range visitors {
		t.Run(v.name, func(t *testing.T) {
			if err := chromedp.Do(ctx,
				chromedp.Emulate(v),
				chromedp.Navigate(srv.URL+"/settings?lang=en&emailaddress=alice%40example.com"),
				chromedp.WaitVisible(chromedp.CSS("table.servers")),
			); err != nil {
				t.Fatalf("opening the page as %s: %v", v.info.Name, err)
			}
			ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
			if err != nil || ua != v.info.UserAgent {
				t.Fatalf("the browser sends User-Agent %q (%v), want %q", ua, err, v.info.UserAgent)
			}
			parts, err := chromedp.Run(ctx, chromedp.Evaluate[[]part](readParts))
			if err != nil {
				t.Fatalf("reading the page's parts: %v", err)
			}
			var names []string
			for i, p := range parts {
				names = append(names, p.Name)
				if !p.Shown {
					t.Errorf("part %s is hidden from %s", p.Name, v.info.Name)
				}
				if i > 0 && p.Top < parts[i-1].Top {
					t.Errorf("part %s is laid out above %s", p.Name, parts[i-1].Name)
				}
			}
			if !slices.Equal(names, v.parts) {
				t.Errorf("%s sees the parts in the order\n %v\nwant\n %v", v.info.Name, names, v.parts)
			}
			hints, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
				`Array.from(document.querySelectorAll('#auto > [data-hint]')).map(e => e.dataset.hint)`))
			if err != nil || !slices.Equal(hints, v.hints) {
				t.Errorf("%s sees the hints in the order %v (%v), want %v", v.info.Name, hints, err, v.hints)
			}
			// What the visitor's device needs is on the first screen.
			fold, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
				`(() => { const e = document.querySelector('`+v.lead+`'); return e ? e.getBoundingClientRect().bottom - window.innerHeight : 1e9 })()`))
			if err != nil || fold > 0 {
				t.Errorf("%s: %s ends %.0f px below the first screen (%v)", v.info.Name, v.lead, fold, err)
			}
			first, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			keepScreenshot(t, dir, fmt.Sprintf("device-%s-first-screen.png", v.name), first)
			full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			keepScreenshot(t, dir, fmt.Sprintf("device-%s-page.png", v.name), full)
		})
	}

	// Where dns.autodiscover_target sends Outlook to the hoster's host,
	// a Windows visitor reads, on the first screen, that Outlook will ask
	// and which URL to allow.
	cfg, err := config.Parse("t.yaml", []byte(`dns: {autodiscover_target: autodiscover.hoster.example}
providers:
  - id: mail.example.com
    display_name: Example Mail
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	hoster := testutil.Start(t, cfg, server.Options{})
	if err := chromedp.Do(ctx,
		chromedp.Emulate(visitors[2]),
		chromedp.Navigate(hoster.URL+"/settings?lang=en&emailaddress=alice%40example.com"),
		chromedp.WaitVisible(chromedp.ID("outlook-url")),
	); err != nil {
		t.Fatalf("the Outlook prompt for a target: %v", err)
	}
	fold, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`document.getElementById('outlook-url').getBoundingClientRect().bottom - window.innerHeight`))
	if err != nil || fold > 0 {
		t.Errorf("the Autodiscover URL ends %.0f px below the first screen (%v)", fold, err)
	}
	first, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	keepScreenshot(t, dir, "device-windows-target-first-screen.png", first)
}

// pageOrder reads, from the HTML the server sends, the page's parts and
// the hints of its "auto" part in document order.
func pageOrder(d doc) (parts, hints []string) {
	main := find(d.root, func(n *html.Node) bool { return n.Data == "main" })[0]
	for c := main.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type != html.ElementNode:
		case c.Data == "div" && hasClass(c, "auto"):
			parts = append(parts, "auto")
			for h := c.FirstChild; h != nil; h = h.NextSibling {
				if v := attr(h, "data-hint"); h.Type == html.ElementNode && v != "" {
					hints = append(hints, v)
				}
			}
		case c.Data == "section" && hasClass(c, "apple"):
			parts = append(parts, "apple")
		case c.Data == "section" && attr(c, "aria-labelledby") == "h-incoming":
			parts = append(parts, "servers")
		}
	}
	return parts, hints
}

// TestDeviceOrder asks the running server for the page of an address with
// the User-Agents real browsers and mail programs send, and reads the order
// of its parts from the HTML: the visitor's device first, nothing left out,
// and Vary: User-Agent so that no cache hands one device's page to another.
func TestDeviceOrder(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	var (
		apple   = []string{"apple", "auto", "servers"}
		others  = []string{"auto", "servers", "apple"}
		general = []string{"general", "android", "outlook"}
	)
	for _, tc := range []struct {
		name, ua     string
		parts, hints []string
	}{
		{"iPhone Safari", uaIPhone, apple, general},
		{"iPad Safari (asks for desktop pages)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", apple, general},
		{"iPad Chrome", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", apple, general},
		{"Mac Firefox", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0", apple, general},
		{"Android Chrome", uaAndroid, others, []string{"android", "general", "outlook"}},
		{"Android Firefox", "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0", others, []string{"android", "general", "outlook"}},
		{"Windows Edge", uaWindows, others, []string{"outlook", "general", "android"}},
		{"Windows Firefox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", others, []string{"outlook", "general", "android"}},
		{"Outlook's web view", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0 OneOutlook/1.2024.612.100", others, []string{"outlook", "general", "android"}},
		{"Linux Firefox", uaLinux, others, general},
		{"ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", others, general},
		{"curl", "curl/8.8.0", others, general},
		{"no User-Agent", "", others, general},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/settings?emailaddress=alice@example.com", nil)
			if err != nil {
				t.Fatal(err)
			}
			// Go sends its own User-Agent unless the header is set,
			// even to the empty string.
			req.Header["User-Agent"] = []string{tc.ua}
			r := testutil.Do(t, req)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			if !slices.Contains(r.Header.Values("Vary"), "User-Agent") {
				t.Errorf("Vary %q lacks User-Agent", r.Header.Values("Vary"))
			}
			parts, hints := pageOrder(parse(t, r.Body))
			if !slices.Equal(parts, tc.parts) || !slices.Equal(hints, tc.hints) {
				t.Errorf("parts %v, hints %v; want %v, %v", parts, hints, tc.parts, tc.hints)
			}
		})
	}
}

// TestOutlookPrompt: when dns.autodiscover_target sends Outlook to another
// host, the Outlook hint says that Outlook will ask, for this address, and
// shows the URL to compare; without a target it says nothing of the kind.
func TestOutlookPrompt(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`dns: {autodiscover_target: autodiscover.hoster.example}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		srv  *testutil.Running
		want string
	}{
		{"target", testutil.Start(t, cfg, server.Options{}), "https://autodiscover.hoster.example/autodiscover/autodiscover.xml"},
		{"none", testutil.Start(t, testutil.Demo(t), server.Options{}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lang := range []string{"en", "de"} {
				r := get(t, tc.srv.URL+"/settings?lang="+lang+"&emailaddress=alice@example.com", "User-Agent", uaWindows)
				d := parse(t, r.Body)
				hint := find(d.root, func(n *html.Node) bool { return attr(n, "data-hint") == "outlook" })
				if r.StatusCode != http.StatusOK || len(hint) != 1 {
					t.Fatalf("%s: status %d, %d Outlook hints", lang, r.StatusCode, len(hint))
				}
				u := byID(d, "outlook-url")
				switch {
				case tc.want == "" && u != nil:
					t.Errorf("%s: prompt shown without a target: %s", lang, text(hint[0]))
				case tc.want != "" && (u == nil || text(u) != tc.want || !strings.Contains(text(hint[0]), "alice@example.com")):
					t.Errorf("%s: hint %q, want the URL %s and the address", lang, text(hint[0]), tc.want)
				}
			}
		})
	}
}
