package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Asking for help is a request, not an error: every subcommand prints its
// usage to stdout and exits 0 (scripts and `| less` read stdout). Usage
// errors still go to stderr with exit status 2.
func TestHelpAndUsageErrors(t *testing.T) {
	subcommands := map[string]string{ // what the usage starts with
		"serve":   "Usage: mailautoconf serve [options]",
		"check":   "Usage: mailautoconf check --config FILE",
		"records": "Usage: mailautoconf records [--config FILE]",
		"probe":   "Usage: mailautoconf probe ADDRESS [options]",
		"version": "Usage: mailautoconf version",
	}
	options := map[string]string{"serve": "-log-format", "check": "-config", "records": "-zone", "probe": "-resolver"}
	type tc struct {
		args   []string
		code   int
		stdout string // prefix; "" = empty
		stderr string // substring; "" = empty
	}
	var cases []tc
	for _, top := range [][]string{{"--help"}, {"-help"}, {"-h"}, {"help"}, {"help", "help"}} {
		cases = append(cases, tc{top, 0, "mailautoconf publishes mail client auto-configuration.", ""})
	}
	for sub, want := range subcommands {
		for _, h := range []string{"--help", "-help", "-h", "--h"} {
			cases = append(cases, tc{[]string{sub, h}, 0, want, ""})
		}
		cases = append(cases, tc{[]string{"help", sub}, 0, want, ""})
		cases = append(cases, tc{[]string{sub, "--no-such-flag"}, 2, "", "flag provided but not defined: -no-such-flag\n" + want})
	}
	cases = append(cases,
		// --help wins wherever it is among the options.
		tc{[]string{"serve", "--config", "/nonexistent.yaml", "--help"}, 0, subcommands["serve"], ""},
		tc{[]string{"probe", "--json", "-h", "alice@example.com"}, 0, subcommands["probe"], ""},
		tc{[]string{"check", "--config=/nonexistent.yaml", "-help"}, 0, subcommands["check"], ""},
		// Usage errors.
		tc{nil, 2, "", "Usage:"},
		tc{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		tc{[]string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		tc{[]string{"check"}, 2, "", "--config FILE is required"},
		tc{[]string{"probe"}, 2, "", "give exactly one e-mail address\n" + subcommands["probe"]},
		tc{[]string{"version", "extra"}, 2, "", `unexpected argument "extra"`},
		tc{[]string{"serve", "--http"}, 2, "", "flag needs an argument: -http"},
		tc{[]string{"serve", "--log-format", "xml", "--http", "127.0.0.1:0"}, 2, "", `--log-format "xml" is not text or json`},
		// A renewal check more often than every second is refused before
		// anything starts, 0 included (it is not "the default").
		tc{[]string{"serve", "--acme-renew-check", "500ms", "--http", "127.0.0.1:0"}, 2, "", "--acme-renew-check 500ms: must be at least 1s"},
		tc{[]string{"serve", "--acme-renew-check", "0", "--http", "127.0.0.1:0"}, 2, "", "--acme-renew-check 0s: must be at least 1s"},
		tc{[]string{"serve", "--acme-renew-check", "-1m", "--http", "127.0.0.1:0"}, 2, "", "--acme-renew-check -1m0s: must be at least 1s"},
		tc{[]string{"serve", "--acme-renew-check", "soon"}, 2, "", `invalid value "soon" for flag -acme-renew-check`},
	)
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			if c.stdout == "" && out.Len() != 0 || !strings.HasPrefix(out.String(), c.stdout) {
				t.Errorf("stdout %q, want it to start with %q", out.String(), c.stdout)
			}
			if c.stderr == "" && errb.Len() != 0 || !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("stderr %q, want %q in it", errb.String(), c.stderr)
			}
			if len(c.args) > 0 && c.code == 0 {
				if opt := options[c.args[0]]; opt != "" && !strings.Contains(out.String(), opt) {
					t.Errorf("%s usage lists no %s option:\n%s", c.args[0], opt, out.String())
				}
			}
		})
	}
}

// The same through the real binary: the exit status is the process's.
func TestHelpExitStatus(t *testing.T) {
	bin := buildBinary(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"serve", "--help"}, 0},
		{[]string{"probe", "-h"}, 0},
		{[]string{"serve", "--no-such-flag"}, 2},
		{[]string{"check"}, 2},
	} {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, c.args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("mailautoconf %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, errb.String())
		}
		if c.code == 0 && (!strings.Contains(out.String(), "Usage") || errb.Len() != 0) {
			t.Errorf("mailautoconf %s: usage not on stdout alone\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), out.String(), errb.String())
		}
	}
}
