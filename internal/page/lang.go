package page

import (
	"bytes"
	"embed"
	"fmt"
	"net/http"
	"path"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
)

// Every language is one file lang/<tag>.yaml holding all of its strings.
// Adding French or Italian means adding lang/fr.yaml or lang/it.yaml with
// the same keys as lang/en.yaml; nothing else changes.
//
//go:embed lang/*.yaml
var langFiles embed.FS

// DefaultLanguage is used when neither ?lang= nor Accept-Language names a
// language the page speaks.
const DefaultLanguage = "en"

// Messages are the strings of one language. Strings with %s take the
// argument named in the field's comment; none contains HTML: the template
// adds the markup, so that html/template escapes every value.
type Messages struct {
	// Tag is the language tag, from the file name.
	Tag string `yaml:"-"`

	LanguageName string `yaml:"language_name"` // the language's own name, for the switcher
	LanguageNav  string `yaml:"language_nav"`  // label of the language switcher

	Title              string `yaml:"title"`
	TitleFor           string `yaml:"title_for"` // %s: provider name
	Intro              string `yaml:"intro"`
	AutoHint           string `yaml:"auto_hint"`
	HintAndroidLabel   string `yaml:"hint_android_label"`
	HintAndroid        string `yaml:"hint_android"`
	HintOutlookLabel   string `yaml:"hint_outlook_label"`
	HintOutlook        string `yaml:"hint_outlook"`
	HintOutlookPrompt  string `yaml:"hint_outlook_prompt"` // %s: the address
	AddressLabel       string `yaml:"address_label"`
	AddressPlaceholder string `yaml:"address_placeholder"`
	Submit             string `yaml:"submit"`

	SettingsFor  string `yaml:"settings_for"` // %s: the address
	Incoming     string `yaml:"incoming"`
	IMAPHeading  string `yaml:"imap_heading"`
	POP3Heading  string `yaml:"pop3_heading"`
	Outgoing     string `yaml:"outgoing"`
	SMTPHeading  string `yaml:"smtp_heading"`
	ColServer    string `yaml:"col_server"`
	ColPort      string `yaml:"col_port"`
	ColSecurity  string `yaml:"col_security"`
	ColLogin     string `yaml:"col_login"`
	ColPassword  string `yaml:"col_password"`
	Preferred    string `yaml:"preferred"`
	Alternative  string `yaml:"alternative"`
	PasswordNote string `yaml:"password_note"`

	SecurityTLS      string `yaml:"security_tls"`
	SecurityStartTLS string `yaml:"security_starttls"`
	SecurityPlain    string `yaml:"security_plain"`
	PlainWarning     string `yaml:"plain_warning"`

	AuthPassword  string `yaml:"auth_password"`
	AuthEncrypted string `yaml:"auth_encrypted"`
	AuthOAuth2    string `yaml:"auth_oauth2"`
	AuthNTLM      string `yaml:"auth_ntlm"`
	AuthGSSAPI    string `yaml:"auth_gssapi"`
	AuthClientTLS string `yaml:"auth_client_tls"`
	AuthClientIP  string `yaml:"auth_client_ip"`
	AuthNone      string `yaml:"auth_none"`

	AppleHeading string `yaml:"apple_heading"`
	AppleText    string `yaml:"apple_text"`
	AppleButton  string `yaml:"apple_button"`
	AppleSafari  string `yaml:"apple_safari"`
	QRText       string `yaml:"qr_text"`
	QRAlt        string `yaml:"qr_alt"`

	// Calendars, contacts and JMAP (only for providers with them).
	ProfileChoice   string `yaml:"profile_choice"`    // legend of the profile's choice
	ProfileMailOnly string `yaml:"profile_mail_only"` // choice: the mail account only
	ProfileWithDAV  string `yaml:"profile_with_dav"`  // choice: with calendars and contacts
	DAVHeading      string `yaml:"dav_heading"`
	DAVText         string `yaml:"dav_text"`
	DAVCalDAV       string `yaml:"dav_caldav"`
	DAVCardDAV      string `yaml:"dav_carddav"`
	DAVJMAP         string `yaml:"dav_jmap"`
	ColService      string `yaml:"col_service"`
	ColURL          string `yaml:"col_url"`
	Copy            string `yaml:"copy"`   // the copy button
	Copied          string `yaml:"copied"` // the copy button, after copying

	ExplainHeading   string `yaml:"explain_heading"`
	IMAPOrPOP3       string `yaml:"imap_or_pop3"`
	ExplainIMAP      string `yaml:"explain_imap"`
	ExplainPOP3      string `yaml:"explain_pop3"`
	SendingHeading   string `yaml:"sending_heading"`
	ExplainSMTP      string `yaml:"explain_smtp"`
	ExplainPort25    string `yaml:"explain_port25"`
	SecurityHeading  string `yaml:"security_heading"`
	ExplainTLS       string `yaml:"explain_tls"`
	ExplainStartTLS  string `yaml:"explain_starttls"`
	DocsLink         string `yaml:"docs_link"` // %s: provider name
	UnknownDomain    string `yaml:"unknown_domain"`
	UnknownDomainFix string `yaml:"unknown_domain_fix"`
	InvalidAddress   string `yaml:"invalid_address"`
	EmptyAddress     string `yaml:"empty_address"`
	YouTyped         string `yaml:"you_typed"`
}

// Security returns the name people know a security mode by.
func (m *Messages) Security(mode string) string {
	switch mode {
	case "tls":
		return m.SecurityTLS
	case "starttls":
		return m.SecurityStartTLS
	}
	return m.SecurityPlain
}

// Auth explains an authentication method in words.
func (m *Messages) Auth(method string) string {
	switch method {
	case "password-cleartext":
		return m.AuthPassword
	case "password-encrypted":
		return m.AuthEncrypted
	case "OAuth2":
		return m.AuthOAuth2
	case "NTLM":
		return m.AuthNTLM
	case "GSSAPI":
		return m.AuthGSSAPI
	case "TLS-client-cert":
		return m.AuthClientTLS
	case "client-IP-address":
		return m.AuthClientIP
	}
	return m.AuthNone
}

// languages holds the parsed language files, the default first. It is
// filled once at start-up and never changed.
type languages struct {
	list    []*Messages
	matcher language.Matcher
}

func loadLanguages() (*languages, error) {
	entries, err := langFiles.ReadDir("lang")
	if err != nil {
		return nil, fmt.Errorf("reading embedded language files: %w", err)
	}
	var ls languages
	var tags []language.Tag
	for _, e := range entries {
		data, err := langFiles.ReadFile(path.Join("lang", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading language file %s: %w", e.Name(), err)
		}
		m, err := parseMessages(e.Name(), data)
		if err != nil {
			return nil, err
		}
		tag, err := language.Parse(m.Tag)
		if err != nil {
			return nil, fmt.Errorf("language file %s: %w", e.Name(), err)
		}
		if m.Tag == DefaultLanguage {
			// The matcher falls back to its first tag.
			ls.list = append([]*Messages{m}, ls.list...)
			tags = append([]language.Tag{tag}, tags...)
		} else {
			ls.list = append(ls.list, m)
			tags = append(tags, tag)
		}
	}
	if len(ls.list) == 0 || ls.list[0].Tag != DefaultLanguage {
		return nil, fmt.Errorf("language file lang/%s.yaml is missing", DefaultLanguage)
	}
	ls.matcher = language.NewMatcher(tags)
	return &ls, nil
}

// formatKeys are the strings that take one %s argument.
var formatKeys = map[string]bool{"title_for": true, "settings_for": true, "docs_link": true, "hint_outlook_prompt": true}

// parseMessages reads one language file. Unknown keys and missing or empty
// strings are errors, so a translation cannot silently lag behind.
func parseMessages(name string, data []byte) (*Messages, error) {
	m := &Messages{Tag: strings.TrimSuffix(name, ".yaml")}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("language file %s: %w", name, err)
	}
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		key := f.Tag.Get("yaml")
		if key == "-" {
			continue
		}
		s := v.Field(i).String()
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("language file %s: %s is missing", name, key)
		}
		want := 0
		if formatKeys[key] {
			want = 1
		}
		if got := strings.Count(s, "%s"); got != want || strings.Count(s, "%") != want {
			return nil, fmt.Errorf("language file %s: %s must contain %%s exactly %d time(s) and no other %%", name, key, want)
		}
	}
	return m, nil
}

// pick chooses the language of a response: an explicit ?lang= wins, then
// the browser's Accept-Language, then the default. The second result is
// the explicit choice, to be kept in links and the form.
func (ls *languages) pick(r *http.Request) (*Messages, string) {
	if v := r.URL.Query().Get("lang"); v != "" {
		if tag, err := language.Parse(v); err == nil {
			if _, i, conf := ls.matcher.Match(tag); conf != language.No {
				return ls.list[i], ls.list[i].Tag
			}
		}
	}
	// A malformed header yields no preferences and so the default.
	prefs, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := ls.matcher.Match(prefs...)
	return ls.list[i], ""
}
