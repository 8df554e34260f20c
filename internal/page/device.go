package page

import "strings"

// A visitor's device only decides the order of the page for an address:
// what the person most likely needs comes first, and everything else
// follows. Nothing is ever left out for a device, so a wrong guess (a
// desktop browser that says "Android", an iPad that says "Macintosh") costs
// some scrolling, never a missing setting.

// Parts of the page for an address, as the template names them.
const (
	partApple   = "apple"   // the profile button and QR code
	partAuto    = "auto"    // the "your program finds this by itself" hints
	partServers = "servers" // the server tables and the password note
)

// Hints inside the auto part, as the template names them.
const (
	hintGeneral = "general" // most programs set themselves up
	hintAndroid = "android" // Thunderbird (K-9 Mail), FairEmail and others
	hintOutlook = "outlook" // Outlook's Autodiscover, and its prompt
)

// layout is the order of the parts and of the hints for one device class.
type layout struct {
	parts, hints []string
}

// Layouts per device class. Any other browser keeps the order the page had
// before it knew devices: hints, servers, profile.
var (
	layoutApple   = layout{[]string{partApple, partAuto, partServers}, []string{hintGeneral, hintAndroid, hintOutlook}}
	layoutAndroid = layout{[]string{partAuto, partServers, partApple}, []string{hintAndroid, hintGeneral, hintOutlook}}
	layoutWindows = layout{[]string{partAuto, partServers, partApple}, []string{hintOutlook, hintGeneral, hintAndroid}}
	layoutOther   = layout{[]string{partAuto, partServers, partApple}, []string{hintGeneral, hintAndroid, hintOutlook}}
)

// layoutFor picks the layout from a browser's User-Agent:
//
//   - iPhone, iPad and iPod say so; iPadOS Safari asks for desktop pages
//     and says "Macintosh", like Safari on a Mac: all of them install the
//     profile, so it comes first.
//   - Android browsers say "Android" (before any "like Mac OS X" an app's
//     web view might add), and the phone's mail apps set themselves up.
//   - Windows browsers say "Windows NT"; there Outlook is the usual mail
//     program, and Outlook's own web views say "Outlook" or "Microsoft
//     Office".
//
// Anything else, and a missing User-Agent, gets layoutOther.
func layoutFor(ua string) layout {
	u := strings.ToLower(ua)
	switch {
	case strings.Contains(u, "android"):
		return layoutAndroid
	case strings.Contains(u, "iphone") || strings.Contains(u, "ipad") || strings.Contains(u, "ipod") ||
		strings.Contains(u, "macintosh"):
		return layoutApple
	case strings.Contains(u, "windows nt") || strings.Contains(u, "outlook") || strings.Contains(u, "microsoft office"):
		return layoutWindows
	}
	return layoutOther
}
