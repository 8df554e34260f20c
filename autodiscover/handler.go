package autodiscover

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/bufpool"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
)

// Paths, in the spelling routes are registered with (the service's route
// table, internal/route). CanonicalizePath maps every casing clients use
// onto them.
const (
	POXPath  = route.POXPath
	JSONPath = route.JSONPath
)

// drainBytes is how much of an oversized body is read and thrown away
// before answering. Without it the server would close the connection while
// the client is still sending, and most clients then report a connection
// error instead of reading the answer. Beyond it the connection is closed.
const drainBytes = 2 << 20

// Current returns the catalog and renderer of the configuration in force, so
// a reload never mixes two configurations within one request.
type Current func() (*settings.Catalog, *Renderer)

// SkipBodyLimit tells the server-wide body limit to leave POX requests to
// the handler, which enforces its own, smaller limit.
func SkipBodyLimit(c echo.Context) bool { return c.Path() == POXPath }

// CanonicalizePath rewrites the Autodiscover paths of a request URL, in
// whatever case they arrive, to their registered lower-case spelling; the
// server calls it before routing. Outlook sends
// "/Autodiscover/Autodiscover.xml", other clients
// "/autodiscover/autodiscover.xml" or "/AutoDiscover/AutoDiscover.xml";
// IIS, where Exchange runs, matches paths without regard to case. Only the
// two prefixes are touched: the address in a v2 JSON path keeps its case,
// and no other route is affected.
func CanonicalizePath(u *url.URL) {
	p := u.Path
	switch {
	case len(p) == len(POXPath) && strings.EqualFold(p, POXPath) && p != POXPath:
		u.Path, u.RawPath = POXPath, ""
	case len(p) >= len(JSONPath) && strings.EqualFold(p[:len(JSONPath)], JSONPath) &&
		(len(p) == len(JSONPath) || p[len(JSONPath)] == '/') && p[:len(JSONPath)] != JSONPath:
		u.Path, u.RawPath = JSONPath+p[len(JSONPath):], ""
	}
}

// Handler serves the POX endpoint. Every answer is HTTP 200 with an
// Autodiscover document, errors included, as Exchange does.
//
// One buffer, taken from a pool, holds the request body and then the
// answer: the parsed request keeps copies of what it needs, and the
// response writer copies the answer before Blob returns.
func Handler(current Current) echo.HandlerFunc {
	var bufs bufpool.Pool
	return func(c echo.Context) error {
		_, r := current()
		now := time.Now()
		req := c.Request()
		if req.Method != http.MethodPost {
			web.SetOutcome(c, metrics.OutcomeBadRequest)
			return reply(c, r.Error(errInvalid, now,
				"This is the Autodiscover service. Mail clients POST an Autodiscover request "+
					"with an EMailAddress to this URL; a browser can only see this message."))
		}
		buf := bufs.Get()
		defer bufs.Put(buf)
		body, err := readBody(req, (*buf)[:0])
		*buf = body[:0]
		if err != nil {
			web.SetOutcome(c, metrics.OutcomeBadRequest)
			return reply(c, r.Error(errInvalid, now, err.Error()))
		}
		ar, err := ParseRequest(body)
		if err != nil {
			web.SetOutcome(c, metrics.OutcomeBadRequest)
			return reply(c, r.Error(errInvalid, now, err.Error()))
		}
		out := answer(c, body[:0], current, ar, now)
		*buf = out[:0]
		return reply(c, out)
	}
}

// answer resolves a parsed request and appends the answer to dst. The
// catalog and renderer are taken together, after the body was read, so a
// reload during a slow upload is seen as a whole. Every answer is HTTP 200,
// so the outcome and the domain are noted on c for the access log and the
// metrics.
func answer(c echo.Context, dst []byte, current Current, ar Request, now time.Time) []byte {
	cat, r := current()
	mobile := false
	switch {
	case ar.Schema == "" || strings.EqualFold(ar.Schema, NSOutlook):
		// No schema at all is taken for Outlook's: some scripted
		// clients leave it out, and it is the only one for mail.
	case strings.EqualFold(ar.Schema, NSMobile):
		mobile = true
	default:
		web.SetOutcome(c, metrics.OutcomeBadRequest)
		return r.AppendError(dst, errNoSchema, now, "the AcceptableResponseSchema is not supported; ask for "+NSOutlook+" or "+NSMobile)
	}
	s, err := cat.ForAddress(ar.Email)
	if err != nil {
		web.NoteError(c, err)
		// The errors of ForAddress never repeat the input.
		kind := errInvalid
		if mobile {
			kind = errMobileInvalid
		}
		return r.AppendError(dst, kind, now, err.Error())
	}
	web.Note(c, s)
	if !mobile {
		return r.AppendSettings(dst, s)
	}
	if doc, ok := r.AppendMobile(dst, s); ok {
		return doc
	}
	web.SetOutcome(c, metrics.OutcomeBadRequest)
	return r.AppendError(dst, errMobileNone, now, "no Exchange ActiveSync service is offered for this domain")
}

// readBody appends the request body to dst, at most MaxBodyBytes. A larger
// body is drained (up to drainBytes) and refused.
func readBody(req *http.Request, dst []byte) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		// One byte more than allowed tells an oversized body apart.
		room := min(cap(dst), MaxBodyBytes+1) - len(dst)
		n, err := req.Body.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, badRequest("the request body could not be read")
		}
		if len(dst) > MaxBodyBytes {
			_, _ = io.CopyN(io.Discard, req.Body, drainBytes)
			return dst, badRequest("the request body is larger than %d bytes", MaxBodyBytes)
		}
	}
	return dst, nil
}

func reply(c echo.Context, doc []byte) error {
	return web.Blob(c, http.StatusOK, ContentType, doc)
}

// Autodiscover v2 protocols. Clients spell them in any case: Outlook sends
// "Autodiscoverv1".
const (
	ProtocolV1         = "AutodiscoverV1"
	ProtocolActiveSync = "ActiveSync"
)

// jsonAnswer is the v2 answer, field names as Microsoft 365 spells them.
type jsonAnswer struct {
	Protocol string `json:"Protocol"`
	URL      string `json:"Url"`
}

// jsonError is the v2 error form.
type jsonError struct {
	Code    string `json:"ErrorCode"`
	Message string `json:"ErrorMessage"`
}

// JSONHandler serves Autodiscover v2:
//
//	GET /autodiscover/autodiscover.json?Email=<address>&Protocol=AutodiscoverV1
//	GET /autodiscover/autodiscover.json/v1.0/<address>?Protocol=AutodiscoverV1
//
// The answer only names the URL of the POX endpoint (or the ActiveSync
// URL); the settings themselves come from there.
//
// The two success answers are written from pre-rendered pieces into a
// pooled buffer; errors, which are rare, go through encoding/json.
func JSONHandler(current Current) echo.HandlerFunc {
	var bufs bufpool.Pool
	return func(c echo.Context) error {
		cat, r := current()
		req := c.Request()
		proto, _ := web.Query(req, "Protocol")
		var want string
		switch {
		case strings.EqualFold(proto, ProtocolV1):
			want = ProtocolV1
		case strings.EqualFold(proto, ProtocolActiveSync):
			want = ProtocolActiveSync
		default:
			return jsonReply(c, http.StatusBadRequest, jsonError{"InvalidProtocol",
				"The given protocol value '" + sanitize(proto) + "' is invalid. Supported values are '" +
					ProtocolV1 + "," + ProtocolActiveSync + "'."})
		}
		raw, ok := "", false
		switch rest := strings.TrimPrefix(req.URL.Path, JSONPath); rest {
		case "", "/":
			raw, ok = web.Query(req, "Email")
		default:
			ver, addr, found := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
			if !found || !strings.EqualFold(ver, "v1.0") {
				return jsonReply(c, http.StatusNotFound, jsonError{"NotFound",
					"use " + JSONPath + "/v1.0/<address> or " + JSONPath + "?Email=<address>"})
			}
			raw, ok = addr, true
		}
		if !ok {
			return jsonReply(c, http.StatusBadRequest, jsonError{"InvalidUser", "missing Email parameter"})
		}
		s, err := cat.ForAddress(raw)
		if err != nil {
			switch {
			case address.IsInvalid(err):
				return jsonReply(c, http.StatusBadRequest, jsonError{"InvalidUser", err.Error()})
			case errors.Is(err, settings.ErrUnknownDomain):
				return jsonReply(c, http.StatusNotFound, jsonError{"NotFound", err.Error()})
			}
			return jsonReply(c, web.Status(err), jsonError{"InternalError", http.StatusText(web.Status(err))})
		}
		web.Note(c, s)
		if want == ProtocolActiveSync {
			u := r.ActiveSyncURL(s.Provider)
			if u == "" {
				return jsonReply(c, http.StatusBadRequest, jsonError{"InvalidProtocol",
					"ActiveSync is not offered for this domain. Supported values are '" + ProtocolV1 + "'."})
			}
			return web.Blob(c, http.StatusOK, jsonContentType, r.activeSyncJSON[s.Provider.Index])
		}
		// autodiscover.<domain> of the domain asked for, not of the
		// canonical one of an alias: the POX endpoint there answers with
		// the redirect to the mailbox. With dns.autodiscover_target it is
		// that one host, the same the _autodiscover._tcp record names.
		host := s.Provider.AutodiscoverHost(s.Address.Domain)
		buf := bufs.Get()
		defer bufs.Put(buf)
		out, ok := appendV1JSON((*buf)[:0], host)
		*buf = out[:0]
		if !ok {
			return jsonReply(c, http.StatusOK, jsonAnswer{ProtocolV1, "https://" + host + POXPath})
		}
		return web.Blob(c, http.StatusOK, jsonContentType, out)
	}
}

const jsonContentType = "application/json"

// The v1 answer around the host, as encoding/json writes jsonAnswer.
const (
	v1JSONHead = `{"Protocol":"` + ProtocolV1 + `","Url":"https://`
	v1JSONTail = POXPath + `"}`
)

// appendV1JSON appends the AutodiscoverV1 answer for the POX host to dst.
// A parsed host name is lower-case letters, digits, '-' and '.', which JSON
// writes as they are; for anything else it returns false and leaves the
// escaping to encoding/json.
func appendV1JSON(dst []byte, host string) ([]byte, bool) {
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return dst, false
		}
	}
	dst = append(dst, v1JSONHead...)
	dst = append(dst, host...)
	return append(dst, v1JSONTail...), true
}

func jsonReply(c echo.Context, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return web.Blob(c, code, jsonContentType, b)
}
