package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// dockerfile is one parsed instruction of deploy/Dockerfile.
type instruction struct {
	line    int
	keyword string // upper case
	args    string
}

// parseDockerfile splits a Dockerfile into instructions: comments and
// parser directives dropped, backslash continuations joined.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, keyword: strings.ToUpper(kw), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Fatalf("%s: ends in a continuation line", path)
	}
	return out
}

// goBuildCommand returns the `go build` command of the Dockerfile's build
// stage and the environment variables set on its RUN line.
func goBuildCommand(t *testing.T, ins []instruction) (env map[string]string, args []string) {
	t.Helper()
	for _, in := range ins {
		if in.keyword != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		fields := shellFields(in.args)
		env = map[string]string{}
		for i, f := range fields {
			if f == "go" && i+1 < len(fields) && fields[i+1] == "build" {
				for j := i - 1; j >= 0 && strings.Contains(fields[j], "=") && !strings.HasPrefix(fields[j], "--"); j-- {
					k, v, _ := strings.Cut(fields[j], "=")
					env[k] = v
				}
				return env, fields[i+2:]
			}
		}
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return nil, nil
}

// shellFields splits a RUN line the way /bin/sh would for the simple
// quoting the Dockerfile uses: double-quoted words keep their spaces.
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

var buildVars = regexp.MustCompile(`\$\{?([A-Z_]+)\}?`)

// testVersion is what the test passes as the image's VERSION build argument.
const testVersion = "v9.8.7-deploytest"

// buildDir holds the binary built once for all tests.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailautoconf-deploy-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// binary builds mailautoconf exactly as deploy/Dockerfile does (same
// environment, flags and package; only the output path differs) and returns
// its path. Every test that runs the service uses this binary, so the unit,
// the manifests and the image are checked against what would be shipped.
func binary(t *testing.T) string {
	t.Helper()
	env, args := goBuildCommand(t, parseDockerfile(t, "Dockerfile"))
	buildOnce.Do(func() {
		buildPath = filepath.Join(buildDir, "mailautoconf")
		vars := map[string]string{"VERSION": testVersion, "TARGETOS": "linux", "TARGETARCH": runtimeArch()}
		expand := func(s string) string {
			return buildVars.ReplaceAllStringFunc(s, func(m string) string {
				return vars[buildVars.FindStringSubmatch(m)[1]]
			})
		}
		for i := range args {
			if i > 0 && args[i-1] == "-o" {
				args[i] = buildPath
			}
			args[i] = expand(args[i])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
		cmd.Dir = ".." // the Dockerfile builds from the repository root
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+expand(v))
		}
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building mailautoconf as deploy/Dockerfile does: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

func runtimeArch() string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// run runs the binary with a time limit and returns its combined output.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// writeTestCertificate writes a self-signed certificate and its key as PEM
// files, the way a kubernetes.io/tls Secret or certbot would provide them.
func writeTestCertificate(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "autoconfig.example.com"},
		DNSNames:     []string{"autoconfig.example.com", "autodiscover.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certPath, "CERTIFICATE", der}, {keyPath, "PRIVATE KEY", kder}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
