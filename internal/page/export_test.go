package page

// PublicURL exposes publicURL to the tests.
var PublicURL = publicURL

// ParseMessages exposes parseMessages to the tests.
var ParseMessages = parseMessages
