// Package e2e holds end-to-end tests that span every endpoint of the
// running service at once: the hostile-input table (what scanners, broken
// clients and attackers send) and the fuzz targets that drive whole HTTP
// requests through the router and raw datagrams through the DNS server.
//
// The package has no code of its own; the tests start the real server on
// loopback with internal/testutil.
package e2e
