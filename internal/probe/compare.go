package probe

import (
	"slices"
	"strings"
)

// compare judges what each client would configure and where the clients
// disagree.
func (p *prober) compare(rep *Report) {
	for _, v := range rep.Clients {
		if v.Incoming == nil && v.Outgoing == nil {
			p.add(SevError, CodeNoConfig, v.Client, "no configuration for %s: %s", v.Client, noConfigHint(v.Client))
			continue
		}
		for _, d := range []struct {
			name     string
			chosen   *Endpoint
			missing  string
			incoming bool
		}{
			{"incoming", v.Incoming, CodeNoIncoming, true},
			{"outgoing", v.Outgoing, CodeNoOutgoing, false},
		} {
			if d.chosen == nil {
				p.add(SevError, d.missing, v.Client, "%s gets no %s server from %s", v.Client, d.name, v.Source)
				continue
			}
			plain, secure := 0, 0
			for _, e := range v.Offered {
				if (e.Protocol == SMTP) == d.incoming {
					continue
				}
				if e.Security == SecurityPlain {
					plain++
				} else {
					secure++
				}
			}
			switch {
			case d.chosen.Security == SecurityPlain && secure == 0:
				p.add(SevError, CodePlaintext, v.Client, "%s would use %s without encryption (%s): only plaintext is offered", v.Client, d.chosen, d.name)
			case d.chosen.Security == SecurityPlain:
				p.add(SevError, CodePlaintext, v.Client, "%s would use %s without encryption (%s): the plaintext server comes first", v.Client, d.chosen, d.name)
			case plain > 0:
				p.add(SevWarning, CodePlainOffered, v.Client, "%s also offers %d plaintext %s server(s) to %s", v.Source, plain, d.name, v.Client)
			}
		}
	}
	for _, dir := range []string{"incoming", "outgoing"} {
		var order []string
		who := map[string][]string{}
		shown := map[string]string{}
		for _, v := range rep.Clients {
			e := v.Outgoing
			if dir == "incoming" {
				e = v.Incoming
			}
			if e == nil {
				continue
			}
			k := e.key()
			if _, ok := who[k]; !ok {
				order = append(order, k)
				shown[k] = e.String()
			}
			who[k] = append(who[k], v.Client)
		}
		if len(order) < 2 {
			continue
		}
		var parts []string
		for _, k := range order {
			parts = append(parts, strings.Join(who[k], ", ")+": "+shown[k])
		}
		p.add(SevWarning, CodeDisagree, "", "clients would configure different %s servers: %s", dir, strings.Join(parts, "; "))
	}
}

// noConfigHint says what was looked for.
func noConfigHint(client string) string {
	switch client {
	case Thunderbird:
		return "no autoconfig document at autoconfig.<domain> or <domain>/.well-known (https or http)"
	case Outlook:
		return "no Autodiscover settings from the v2 JSON endpoint, POX on <domain> or autodiscover.<domain>, the http redirect or _autodiscover._tcp"
	case AppleMail:
		return "no configuration profile could be fetched"
	case SRVClients:
		return "no usable _imaps/_imap/_pop3s/_pop3/_submissions/_submission SRV records"
	}
	return ""
}

var severityRank = map[Severity]int{SevError: 0, SevWarning: 1, SevInfo: 2}

// sortFindings puts errors first, keeping the order within a severity
// stable by code, client and message (the sources were asked in parallel).
func sortFindings(fs []Finding) []Finding {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b Finding) int {
		if r := severityRank[a.Severity] - severityRank[b.Severity]; r != 0 {
			return r
		}
		if c := strings.Compare(a.Code, b.Code); c != 0 {
			return c
		}
		if c := strings.Compare(a.Client, b.Client); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return slices.CompactFunc(out, func(a, b Finding) bool { return a == b })
}
