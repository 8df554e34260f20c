package page

// PublicURL exposes publicURL to the tests.
var PublicURL = publicURL
