package deploy

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exported is every metric the service exports under its own prefix, with
// the series names a histogram adds.
var exported = []string{
	"mailautoconf_http_requests_total",
	"mailautoconf_http_request_duration_seconds_bucket",
	"mailautoconf_http_request_duration_seconds_sum",
	"mailautoconf_http_request_duration_seconds_count",
	"mailautoconf_dns_queries_total",
	"mailautoconf_config_reloads_total",
	"mailautoconf_config_last_reload_successful",
	"mailautoconf_config_last_reload_success_timestamp_seconds",
	"mailautoconf_config_domains",
	"mailautoconf_config_domains_not_served",
	"mailautoconf_tls_certificate_not_after_timestamp_seconds",
	"mailautoconf_signing_certificate_not_after_timestamp_seconds",
	"mailautoconf_build_info",
	"mailautoconf_http_connections_closed_total",
	"mailautoconf_directory_up",
	"mailautoconf_directory_domains",
	"mailautoconf_directory_skipped_rows",
	"mailautoconf_directory_last_success_timestamp_seconds",
	"mailautoconf_directory_snapshot_timestamp_seconds",
	"mailautoconf_directory_loads_total",
	"mailautoconf_directory_load_duration_seconds",
	"mailautoconf_directory_mailbox_lookups_total",
	"mailautoconf_directory_mailbox_cache_entries",
	"mailautoconf_acme_orders_total",
	"mailautoconf_acme_failures_total",
	"mailautoconf_acme_on_demand_denied_total",
	"mailautoconf_acme_certificates",
	"mailautoconf_acme_names_missing",
	"mailautoconf_acme_names_failing",
	"mailautoconf_acme_queue_length",
	"mailautoconf_acme_certificate_expiry_seconds_bucket",
	"mailautoconf_acme_certificate_expiry_seconds_sum",
	"mailautoconf_acme_certificate_expiry_seconds_count",
	"mailautoconf_acme_certificate_earliest_expiry_timestamp_seconds",
}

// knownMetric reports whether a series name is one the service exports, one
// of the Go and process collectors' (go_*, process_*), or "up", which
// Prometheus itself records for every scrape.
func knownMetric(name string) bool {
	return slices.Contains(exported, name) || name == "up" ||
		strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// query is what one PromQL expression uses.
type query struct {
	metrics  map[string]bool     // series names selected
	matchers map[string][]string // series name -> "label=value" equality matchers
	grouping map[string]bool     // labels aggregated by
	funcs    map[string]bool     // functions called
}

var promql = parser.NewParser(parser.Options{})

// inspect parses a PromQL expression and collects what it selects.
func inspect(expr string) (query, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return query{}, err
	}
	q := query{metrics: map[string]bool{}, matchers: map[string][]string{}, grouping: map[string]bool{}, funcs: map[string]bool{}}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			q.metrics[n.Name] = true
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					q.matchers[n.Name] = append(q.matchers[n.Name], m.Name+m.Type.String()+m.Value)
				}
			}
		case *parser.AggregateExpr:
			for _, g := range n.Grouping {
				q.grouping[g] = true
			}
		case *parser.Call:
			q.funcs[n.Func.Name] = true
		}
		return nil
	})
	return q, nil
}

// checkMetrics reports series names that the service does not export, and
// selectors without a metric name (which would match every series).
func checkMetrics(t *testing.T, where string, q query) {
	t.Helper()
	for name := range q.metrics {
		if name == "" {
			t.Errorf("%s: a selector without a metric name", where)
		} else if !knownMetric(name) {
			t.Errorf("%s: %s is not a metric of mailautoconf", where, name)
		}
	}
}

func TestMetricCheckCatchesMistakes(t *testing.T) {
	for _, c := range []struct {
		expr    string
		unknown bool
		invalid bool
	}{
		{`sum(rate(mailautoconf_http_requests_total[5m]))`, false, false},
		{`sum(rate(mailautoconf_http_request_total[5m]))`, true, false},
		{`mailautoconf_http_request_duration_seconds > 1`, true, false}, // a histogram has no plain series
		{`sum(rate(mailautoconf_http_requests_total[5m])`, false, true},
		{`{job="mailautoconf"}`, true, false},
	} {
		q, err := inspect(c.expr)
		if (err != nil) != c.invalid {
			t.Errorf("%s: parse error %v, want invalid=%v", c.expr, err, c.invalid)
			continue
		}
		unknown := false
		for name := range q.metrics {
			unknown = unknown || name == "" || !knownMetric(name)
		}
		if !c.invalid && unknown != c.unknown {
			t.Errorf("%s: unknown metric %v, want %v", c.expr, unknown, c.unknown)
		}
	}
}

// loadRules reads alerts.yaml exactly as `promtool check rules` and the
// Prometheus server do: strict YAML, valid PromQL in every expression,
// valid templates in labels and annotations.
func loadRules(t *testing.T, path string) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

func TestRuleCheckCatchesMistakes(t *testing.T) {
	for _, c := range []struct{ name, rules string }{
		{"bad PromQL", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n"},
		{"bad template", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: '{{ $labels.instance '\n"},
		{"unknown field", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    fro: 5m\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errs := rulefmt.Parse([]byte(c.rules), false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAlertRules(t *testing.T) {
	groups := loadRules(t, "prometheus/alerts.yaml")
	names := map[string]bool{}
	all := query{metrics: map[string]bool{}, matchers: map[string][]string{}}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %s: this file holds alerts only", g.Name, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("%s: defined twice", where)
			}
			names[r.Alert] = true
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q, want critical, warning or info", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			q, err := inspect(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			checkMetrics(t, where, q)
			for m := range q.metrics {
				all.metrics[m] = true
				all.matchers[m] = append(all.matchers[m], q.matchers[m]...)
			}
		}
	}
	// What the issue asks to be alerted on, by the series it needs.
	for _, c := range []struct {
		what, metric, matcher string
	}{
		{"an instance down", "up", `job=mailautoconf`},
		{"the HTTP error rate", "mailautoconf_http_requests_total", `outcome=error`},
		{"a failing configuration reload", "mailautoconf_config_last_reload_successful", ""},
		{"an expiring certificate", "mailautoconf_tls_certificate_not_after_timestamp_seconds", ""},
		{"the DNS SERVFAIL rate", "mailautoconf_dns_queries_total", `rcode=SERVFAIL`},
		{"slow answers", "mailautoconf_http_request_duration_seconds_bucket", ""},
		{"a managed certificate close to expiry", "mailautoconf_acme_certificate_earliest_expiry_timestamp_seconds", ""},
		{"an expired managed certificate", "mailautoconf_acme_certificates", `state=expired`},
		{"names that cannot get a certificate", "mailautoconf_acme_names_failing", ""},
	} {
		if !all.metrics[c.metric] || (c.matcher != "" && !slices.Contains(all.matchers[c.metric], c.matcher)) {
			t.Errorf("no alert on %s (%s{%s})", c.what, c.metric, c.matcher)
		}
	}
	// Certificates: warn two weeks ahead.
	found := false
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if strings.Contains(r.Expr, "mailautoconf_tls_certificate_not_after_timestamp_seconds") &&
				regexp.MustCompile(`<\s*14\s*\*\s*86400`).MatchString(r.Expr) {
				found = true
			}
		}
	}
	if !found {
		t.Error("no alert for a certificate that expires within 14 days")
	}
}

// dashboard is the part of a Grafana dashboard model the test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

// grafanaVars replaces Grafana's template variables with values PromQL
// accepts, so that the expressions can be parsed as Prometheus will see
// them.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "6h", "${__range}", "6h",
	"$job", "mailautoconf", "${job}", "mailautoconf",
	"$instance", ".*", "${instance}", ".*",
)

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana/mailautoconf.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/mailautoconf.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("title %q, uid %q, schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// Older dashboards keep the query as a plain string.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Errorf("variable %s: query %s", v.Name, v.Query)
				continue
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		pq, err := inspect(grafanaVars.Replace(m[1]))
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		checkMetrics(t, "variable "+v.Name, pq)
	}
	for _, want := range []string{"datasource", "job", "instance"} {
		if !vars[want] {
			t.Errorf("no template variable %s", want)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr == "" {
			continue
		}
		q, err := inspect(grafanaVars.Replace(a.Expr))
		if err != nil {
			t.Errorf("annotation %s: %v", a.Name, err)
			continue
		}
		checkMetrics(t, "annotation "+a.Name, q)
	}

	var flat []panel
	for _, p := range d.Panels {
		flat = append(flat, p)
		flat = append(flat, p.Panels...)
	}
	ids := map[int]bool{}
	// grouping[metric] collects the labels each metric is broken down by;
	// funcs the functions applied to it.
	grouping := map[string]map[string]bool{}
	funcs := map[string]map[string]bool{}
	for _, p := range flat {
		where := "panel " + p.Title
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: id %d missing or not unique", where, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: bad gridPos %+v", where, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: no title or no query", p.ID, p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("%s: datasource %s is not the dashboard's ${datasource} variable", where, p.Datasource)
		}
		for _, tg := range p.Targets {
			q, err := inspect(grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("%s: %s: %v", where, tg.Expr, err)
				continue
			}
			checkMetrics(t, where, q)
			for m := range q.metrics {
				if grouping[m] == nil {
					grouping[m], funcs[m] = map[string]bool{}, map[string]bool{}
				}
				for g := range q.grouping {
					grouping[m][g] = true
				}
				for f := range q.funcs {
					funcs[m][f] = true
				}
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, c := range []struct {
		what, metric, by, fn string
	}{
		{"requests by endpoint", "mailautoconf_http_requests_total", "endpoint", "rate"},
		{"requests by outcome", "mailautoconf_http_requests_total", "outcome", "rate"},
		{"requests by client", "mailautoconf_http_requests_total", "client", "rate"},
		{"latency quantiles", "mailautoconf_http_request_duration_seconds_bucket", "le", "histogram_quantile"},
		{"DNS queries by rcode", "mailautoconf_dns_queries_total", "rcode", "rate"},
		{"configuration reloads", "mailautoconf_config_reloads_total", "result", ""},
		{"certificate expiry", "mailautoconf_tls_certificate_not_after_timestamp_seconds", "certificate", "time"},
		{"managed certificates by state", "mailautoconf_acme_certificates", "state", ""},
		{"managed certificate expiry", "mailautoconf_acme_certificate_earliest_expiry_timestamp_seconds", "", "time"},
		{"ACME orders", "mailautoconf_acme_orders_total", "result", "increase"},
		{"ACME failures by stage", "mailautoconf_acme_failures_total", "stage", "increase"},
	} {
		if grouping[c.metric] == nil || (c.by != "" && !grouping[c.metric][c.by]) || (c.fn != "" && !funcs[c.metric][c.fn]) {
			t.Errorf("the dashboard does not show %s (%s by %s with %s)", c.what, c.metric, c.by, c.fn)
		}
	}
	used := make([]string, 0, len(grouping))
	for m := range grouping {
		used = append(used, m)
	}
	sort.Strings(used)
	t.Logf("metrics on the dashboard: %s", strings.Join(used, " "))
}
