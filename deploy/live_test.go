package deploy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freePort returns a loopback port that is free for both TCP and UDP.
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// TestPodServes runs the image's binary with the pod's arguments and files
// (ConfigMap and TLS Secret laid out as in the pod), only moving the
// listeners to loopback ports, and speaks to it the way the kubelet, the
// Service and Prometheus do: probes, HTTP, HTTPS, DNS over UDP and TCP,
// /metrics, and a reload by SIGHUP as the systemd unit's ExecReload sends.
func TestPodServes(t *testing.T) {
	m := loadManifests(t)
	c := mainContainer(t, m.deploys[0])
	path, _ := podConfig(t, m, c)
	addr := map[string]string{}
	args := slices.Clone(c.Args)
	args[slices.Index(args, "--config")+1] = path
	for _, l := range []string{"http", "https", "dns", "metrics"} {
		addr[l] = freePort(t)
		args = append(args, "--"+l, addr[l])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) // as systemd and the kubelet stop it
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "autoconfig.example.com"}}}
	get := func(url, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The startup probe: /readyz until it answers 200.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get("http://"+addr["http"]+"/readyz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("http://"+addr["http"]+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	const q = "/mail/config-v1.1.xml?emailaddress=alice@example.com"
	for _, base := range []string{"http://" + addr["http"], "https://" + addr["https"]} {
		code, body := get(base+q, "autoconfig.example.com")
		if code != http.StatusOK || !strings.Contains(body, "imap.example.com") {
			t.Errorf("%s%s: %d\n%s", base, q, code, body)
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		dc := &dns.Client{Net: network, Timeout: 5 * time.Second}
		msg := new(dns.Msg)
		msg.SetQuestion("_imaps._tcp.example.com.", dns.TypeSRV)
		r, _, err := dc.Exchange(msg, addr["dns"])
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("DNS over %s: %v %v", network, err, r)
		}
	}

	// ExecReload=/bin/kill -HUP $MAINPID, as systemd runs it.
	d := unitDirectives(t, unitFile)
	reload := strings.Fields(strings.ReplaceAll(d["ExecReload"][0], "$MAINPID", fmt.Sprint(cmd.Process.Pid)))
	if out, err := exec.Command(reload[0], reload[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(reload, " "), err, out)
	}

	var fams map[string]*dto.MetricFamily
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body := get("http://"+addr["metrics"]+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics on the metrics listener: %d %s", code, body)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		if fams, err = p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if f := fams["mailautoconf_config_reloads_total"]; f != nil && len(f.Metric) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Everything the rules and the dashboard rely on is there...
	for _, name := range []string{
		"mailautoconf_http_requests_total", "mailautoconf_http_request_duration_seconds",
		"mailautoconf_config_reloads_total", "mailautoconf_config_last_reload_successful",
		"mailautoconf_config_last_reload_success_timestamp_seconds", "mailautoconf_config_domains",
		"mailautoconf_tls_certificate_not_after_timestamp_seconds", "mailautoconf_build_info",
		"process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"process_open_fds", "go_goroutines", "go_memstats_heap_inuse_bytes",
	} {
		if f := fams[name]; f == nil || len(f.Metric) == 0 {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// ...and the service exports nothing under its prefix that they do not
	// know of (a renamed metric would silently empty a panel or an alert).
	for name, f := range fams {
		if !strings.HasPrefix(name, "mailautoconf_") {
			continue
		}
		series := name
		if f.GetType() == dto.MetricType_HISTOGRAM {
			series = name + "_bucket"
		}
		if !knownMetric(series) {
			t.Errorf("/metrics exports %s, which the alerts, the dashboard and deploy/README.md do not know", name)
		}
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.Label {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	if f := fams["mailautoconf_config_reloads_total"]; f != nil {
		ok := false
		for _, mt := range f.Metric {
			ok = ok || (label(mt, "result") == "success" && mt.GetCounter().GetValue() >= 1)
		}
		if !ok {
			t.Error("SIGHUP did not count a successful reload")
		}
	}
	if f := fams["mailautoconf_tls_certificate_not_after_timestamp_seconds"]; f != nil && len(f.Metric) > 0 {
		if got := label(f.Metric[0], "certificate"); got != "tls.crt" {
			t.Errorf("certificate label %q, want the Secret's file name tls.crt", got)
		}
		if left := time.Until(time.Unix(int64(f.Metric[0].GetGauge().GetValue()), 0)); left < 80*24*time.Hour {
			t.Errorf("certificate expiry %v away, want about 90 days", left)
		}
	}
	if f := fams["mailautoconf_config_domains"]; f != nil && len(f.Metric) > 0 && f.Metric[0].GetGauge().GetValue() != 2 {
		t.Errorf("mailautoconf_config_domains = %v, want 2", f.Metric[0].GetGauge().GetValue())
	}
	if f := fams["mailautoconf_build_info"]; f != nil && len(f.Metric) > 0 && label(f.Metric[0], "version") != testVersion {
		t.Errorf("build_info version %q, want %q (the Dockerfile's -X main.version)", label(f.Metric[0], "version"), testVersion)
	}
}
