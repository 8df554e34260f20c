package deploy

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Dockerfile can not be built here (no container engine), so its parts
// are checked one by one: its build command is the one that produces the
// binary every other test runs.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var stages []instruction
	for _, in := range ins {
		if in.keyword == "FROM" {
			stages = append(stages, in)
		}
	}
	if len(stages) != 2 {
		t.Fatalf("want a build stage and a final stage, got %d FROM lines", len(stages))
	}
	if !strings.Contains(stages[0].args, "golang:") || !strings.HasSuffix(stages[0].args, " AS build") {
		t.Errorf("build stage %q", stages[0].args)
	}
	final := stages[1].args
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %q is neither scratch nor distroless/static", final)
	}
	env, args := goBuildCommand(t, ins)
	if env["CGO_ENABLED"] != "0" || !slices.Contains(args, "-trimpath") {
		t.Errorf("go build without CGO_ENABLED=0 and -trimpath: %v %v", env, args)
	}

	last := map[string]string{}
	for _, in := range ins[slices.Index(ins, stages[1]):] {
		last[in.keyword] = in.args
	}
	if last["USER"] != "65532:65532" && last["USER"] != "65532" {
		t.Errorf("USER %q, want 65532", last["USER"])
	}
	var entry, cmd []string
	if err := json.Unmarshal([]byte(last["ENTRYPOINT"]), &entry); err != nil || !slices.Equal(entry, []string{"/mailautoconf"}) {
		t.Errorf("ENTRYPOINT %q, want exec form [\"/mailautoconf\"]", last["ENTRYPOINT"])
	}
	if err := json.Unmarshal([]byte(last["CMD"]), &cmd); err != nil || len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("CMD %q, want exec form [\"serve\", …]", last["CMD"])
	}
	if !strings.Contains(last["COPY"], "--from=build") || !strings.HasSuffix(last["COPY"], " "+entry[0]) {
		t.Errorf("COPY %q does not put the built binary at %s", last["COPY"], entry[0])
	}

	// EXPOSE lists exactly the pod's container ports.
	exposed := strings.Fields(last["EXPOSE"])
	sort.Strings(exposed)
	var ports []string
	for _, p := range mainContainer(t, loadManifests(t).deploys[0]).Ports {
		ports = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, strings.ToLower(string(p.Protocol))))
	}
	sort.Strings(ports)
	if !slices.Equal(exposed, ports) {
		t.Errorf("EXPOSE %v, container ports %v", exposed, ports)
	}

	// The binary the build command makes is static (it runs on an image
	// without libc) and carries the VERSION build argument.
	bin := binary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	if out, err := run(t, bin, "version"); err != nil || !strings.Contains(out, testVersion) {
		t.Errorf("version: %v %q, want %s", err, out, testVersion)
	}

	// CMD alone serves the built-in demo configuration, no file needed
	// (listeners moved to loopback ports for the test).
	demo := slices.Clone(cmd)
	httpAddr := ""
	for i := 1; i < len(demo); i++ {
		if strings.HasPrefix(demo[i-1], "--") && strings.HasPrefix(demo[i], ":") {
			demo[i] = freePort(t)
			if demo[i-1] == "--http" {
				httpAddr = demo[i]
			}
		}
	}
	if httpAddr == "" {
		t.Fatalf("CMD %q sets no --http address reachable from outside the container", cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, demo...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	url := "http://" + httpAddr + "/mail/config-v1.1.xml?emailaddress=alice@example.com"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "imap.example.com") {
				t.Fatalf("demo image: %s: %d\n%s", url, resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo image: %v", err)
		}
	}
}
