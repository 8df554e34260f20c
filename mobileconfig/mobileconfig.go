// Package mobileconfig publishes Apple configuration profiles
// (".mobileconfig") that set up a mail account in iOS, iPadOS and macOS Mail.
//
// Apple's Mail looks up neither autoconfig nor Autodiscover: people open a
// link in Safari, which downloads the profile, and install it in Settings
// (iOS: "Profile Downloaded"; macOS: System Settings > Privacy & Security >
// Profiles). What the devices do with it, and what this package therefore
// does:
//   - A profile whose PayloadIdentifier equals an installed one replaces it;
//     a new identifier adds a second account. Identifiers and UUIDs are
//     therefore derived from the provider and the (lower-cased) address only,
//     so downloading the profile again, or for the other protocol, replaces
//     the account instead of duplicating it.
//   - The payload holds exactly one incoming and one outgoing server; there
//     is no fallback list as in autoconfig. The implicit-TLS server is
//     preferred, then STARTTLS.
//   - "…UseSSL" means "use TLS", for implicit TLS and STARTTLS alike: Mail
//     tries implicit TLS on the well-known ports and STARTTLS elsewhere.
//   - Ports and booleans must be plist <integer> and <true/>: a port written
//     as <string> makes the installation fail with a vague error.
//   - No password is ever put in a profile: Apple allows it only in
//     encrypted profiles, and the device asks for it during installation.
//   - Unsigned profiles install with a red "Not Verified"; a CMS-signed one
//     whose signer chains to a trusted root shows "Verified" (see sign.go).
//
// This package is part of the mailautoconf service, not a library: its
// renderers and handlers take the service's own model (internal/settings:
// a Catalog built from the service's configuration, the Settings of one
// request), which Go does not let code outside this module import, and its
// API changes with the service. It lives at the top of the module so that
// the client protocols are found in one look; other programs get the same
// documents from a running service over HTTP.
package mobileconfig

import "errors"

// ContentType makes Safari hand the download to the profile installer.
// Apple's tools send it without parameters.
const ContentType = "application/x-apple-aspen-config"

// ErrNoServer is returned when the provider publishes no server of the
// protocol asked for.
var ErrNoServer = errors.New("no server of this protocol is published for this domain")

// errBadRequest marks problems with the request's own parameters.
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }
