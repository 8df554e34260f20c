package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/testutil"
)

// TestDemoBanner runs the real binary on the demo configuration and does
// what a newcomer does with its start banner: opens the two browser lines
// and runs every printed command line as it is, in a shell, with the real
// curl and dig. Each answer is read the way its client reads it: the
// settings page must carry the address form, the profile and the
// Autodiscover answer must pass the independent validators, the PACC
// document pacc.py with the digest from the demo's DNS server, the
// autoconfig lines must give a valid clientConfig, the unknown domain a
// 404 and dig the SRV record.
func TestDemoBanner(t *testing.T) {
	curl := testutil.Tool(t, "curl", "curl")
	dig := testutil.Tool(t, "dig", "bind9-dnsutils")
	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// The dig line is printed last.
	lines := make(chan []string, 1)
	go func() {
		var got []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got = append(got, sc.Text())
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), "dig ") {
				break
			}
		}
		lines <- got
		io.Copy(io.Discard, stdout)
	}()
	var banner []string
	select {
	case banner = <-lines:
	case <-time.After(20 * time.Second):
		t.Fatalf("no banner within 20s; stderr:\n%s", stderr.String())
	}
	t.Logf("banner:\n%s", strings.Join(banner, "\n"))

	var browser, commands []string
	urlRe := regexp.MustCompile(`^\s+(http://\S+)\s+\(.+\)$`)
	for _, l := range banner {
		if m := urlRe.FindStringSubmatch(l); m != nil {
			browser = append(browser, m[1])
		} else if s := strings.TrimSpace(l); strings.HasPrefix(s, "curl ") || strings.HasPrefix(s, "dig ") {
			commands = append(commands, s)
		}
	}

	// One line each for the settings page and the profile.
	if len(browser) != 2 {
		t.Fatalf("want the settings page and the profile URL, got %q", browser)
	}
	page := testutil.Get(t, browser[0], "")
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(page.Body, []byte(`name="emailaddress"`)) {
		t.Errorf("settings page line %s: %d %s, no address form:\n%s", browser[0], page.StatusCode, page.Header.Get("Content-Type"), page.Body)
	}
	if !strings.HasSuffix(browser[0], "/") || strings.Count(browser[0], "/") != 3 {
		t.Errorf("settings page line %q is not the site's root", browser[0])
	}
	profile := testutil.Get(t, browser[1], "")
	if profile.StatusCode != 200 || profile.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Errorf("profile line %s: %d %s", browser[1], profile.StatusCode, profile.Header.Get("Content-Type"))
	} else {
		testutil.Validate(t, "mobileconfig.py", profile.Body, "demo.mobileconfig", "--for-address", "alice@example.com")
	}

	// The DNS server the dig line asks, for the PACC document's digest.
	var resolver string
	for _, line := range commands {
		if m := regexp.MustCompile(`^dig -p (\d+) @(\S+) `).FindStringSubmatch(line); m != nil {
			resolver = m[2] + ":" + m[1]
		}
	}

	// Every command line, run as printed. Each kind of line must be there.
	seen := map[string]bool{}
	for _, line := range commands {
		out := runLine(t, line, curl, dig)
		switch {
		case strings.HasPrefix(line, "dig "):
			seen["dig"] = true
			if !regexp.MustCompile(`_imaps\._tcp\.example\.com\.\s+\d+\s+IN\s+SRV\s+\d+ \d+ 993 imap\.example\.com\.`).Match(out) {
				t.Errorf("%s: no SRV answer:\n%s", line, out)
			}
		case strings.Contains(line, "/autodiscover/autodiscover.xml"):
			seen["pox"] = true
			if !bytes.Contains(out, []byte("<AutoDiscoverSMTPAddress>alice@example.com</AutoDiscoverSMTPAddress>")) {
				t.Errorf("%s: not alice's settings:\n%s", line, out)
			}
			testutil.Validate(t, "autodiscover.py", out, "demo-pox.xml")
		case strings.Contains(line, "/.well-known/user-agent-configuration.json"):
			seen["pacc"] = true
			testutil.Validate(t, "pacc.py", out, "user-agent-configuration.json", "--resolver", resolver, "--domain", "example.com",
				"--expect-imap", "imap.example.com", "--expect-smtp", "smtp.example.com")
		case strings.Contains(line, "@unknown.org"):
			seen["404"] = true
			if !bytes.HasPrefix(out, []byte("HTTP/1.1 404 ")) {
				t.Errorf("%s: want a 404:\n%s", line, out)
			}
		case strings.Contains(line, "config-v1.1.xml"):
			seen["autoconfig"] = true
			testutil.Validate(t, "autoconfig.py", out, "demo-autoconfig.xml")
		default:
			t.Errorf("unexpected banner line %q", line)
		}
	}
	for _, k := range []string{"autoconfig", "404", "pox", "pacc", "dig"} {
		if !seen[k] {
			t.Errorf("the banner has no %s line", k)
		}
	}
}

// runLine runs one banner line in a shell, with curl and dig found where
// the test found them, and returns its standard output.
func runLine(t *testing.T, line, curl, dig string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	sh := exec.Command("sh", "-c", line)
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(curl)+":"+filepath.Dir(dig)+":"+os.Getenv("PATH"))
	sh.Stdout, sh.Stderr = &out, &errb
	if err := sh.Run(); err != nil {
		t.Errorf("%s: %v\n%s", line, err, errb.String())
	}
	return out.Bytes()
}
