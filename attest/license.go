package attest

import (
	"strings"
)

// SPDX licence identifiers a Python distribution's metadata commonly names, by lower
// case, with the spelling SPDX gives them. An expression is vouched for only when every
// identifier in it is one of these: a validator checks them against SPDX's list, and a
// guess would be worse than "NOASSERTION".
var spdxIDs = index(
	"0BSD", "AFL-2.1", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0",
	"Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause",
	"BSD-3-Clause-Clear", "BSL-1.0", "CC-BY-4.0", "CC0-1.0", "CNRI-Python", "EPL-1.0",
	"EPL-2.0", "EUPL-1.2", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only",
	"GPL-3.0-or-later", "HPND", "ISC", "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only",
	"LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0", "MIT-CMU",
	"MPL-1.1", "MPL-2.0", "NCSA", "OpenSSL", "PSF-2.0", "Python-2.0", "Unicode-3.0",
	"Unicode-DFS-2016", "Unlicense", "UPL-1.0", "W3C", "WTFPL", "X11", "Zlib", "ZPL-2.1",
)

// Exceptions that may follow WITH.
var spdxExceptions = index("Classpath-exception-2.0", "GCC-exception-3.1", "LLVM-exception", "Qt-LGPL-exception-1.1")

// Names metadata uses for a licence (License fields and classifiers), lower case.
var licenseAliases = map[string]string{
	"mit license":                          "MIT",
	"the mit license":                      "MIT",
	"mit licence":                          "MIT",
	"apache 2.0":                           "Apache-2.0",
	"apache-2":                             "Apache-2.0",
	"apache 2":                             "Apache-2.0",
	"apache license 2.0":                   "Apache-2.0",
	"apache license, version 2.0":          "Apache-2.0",
	"apache software license 2.0":          "Apache-2.0",
	"bsd 3-clause":                         "BSD-3-Clause",
	"3-clause bsd":                         "BSD-3-Clause",
	"bsd-3":                                "BSD-3-Clause",
	"new bsd license":                      "BSD-3-Clause",
	"bsd 2-clause":                         "BSD-2-Clause",
	"isc license":                          "ISC",
	"isc license (iscl)":                   "ISC",
	"mozilla public license 2.0":           "MPL-2.0",
	"mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
	"the unlicense (unlicense)":            "Unlicense",
	"osi approved :: mit license":          "MIT",
	"osi approved :: isc license (iscl)":   "ISC",
	"osi approved :: mozilla public license 2.0 (mpl 2.0)":                "MPL-2.0",
	"osi approved :: the unlicense (unlicense)":                           "Unlicense",
	"osi approved :: gnu general public license v2 (gplv2)":               "GPL-2.0-only",
	"osi approved :: gnu general public license v3 (gplv3)":               "GPL-3.0-only",
	"osi approved :: gnu lesser general public license v3 (lgplv3)":       "LGPL-3.0-only",
	"osi approved :: gnu library or lesser general public license (lgpl)": "",
	"osi approved :: bsd license":                                         "",
}

func index(ids ...string) map[string]string {
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		m[strings.ToLower(id)] = id
	}
	return m
}

// spdxLicense returns the licence a distribution declares as an SPDX expression, or ""
// when it is not one pyship can vouch for.
func spdxLicense(declared string) string {
	declared = strings.TrimSpace(declared)
	if declared == "" || strings.Contains(declared, "\n") {
		return ""
	}
	// Classifiers, joined by " OR " when there are several.
	var parts []string
	for _, part := range strings.Split(declared, " OR ") {
		if id, ok := licenseAliases[strings.ToLower(strings.TrimSpace(part))]; ok {
			if id == "" {
				return ""
			}
			parts = append(parts, id)
			continue
		}
		parts = append(parts, part)
	}
	return expression(strings.Join(parts, " OR "))
}

// expression returns e with its identifiers spelled as SPDX does, or "" when it is not a
// well-formed expression of known identifiers: operands and AND/OR alternate, WITH joins an
// identifier to a known exception, and parentheses match and hold something.
func expression(e string) string {
	var out []string
	depth := 0
	// operand is true when the last token ends an operand (an identifier, an exception or
	// a closing parenthesis); with, when it is WITH.
	operand, with := false, false
	for _, tok := range strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(e)) {
		upper := strings.ToUpper(tok)
		switch {
		case tok == "(":
			if operand || with {
				return ""
			}
			depth++
			out = append(out, tok)
		case tok == ")":
			if !operand || depth == 0 {
				return ""
			}
			depth--
			out = append(out, tok)
		case upper == "AND" || upper == "OR":
			if !operand {
				return ""
			}
			operand = false
			out = append(out, upper)
		case upper == "WITH":
			if !operand || out[len(out)-1] == ")" {
				return ""
			}
			operand, with = false, true
			out = append(out, upper)
		default:
			if operand {
				return ""
			}
			ids := spdxIDs
			if with {
				ids = spdxExceptions
			}
			id, ok := ids[strings.ToLower(strings.TrimSuffix(tok, "+"))]
			if !ok {
				return ""
			}
			if strings.HasSuffix(tok, "+") && !with {
				id += "+"
			}
			operand, with = true, false
			out = append(out, id)
		}
	}
	if depth != 0 || !operand {
		return ""
	}
	return strings.ReplaceAll(strings.ReplaceAll(strings.Join(out, " "), "( ", "("), " )", ")")
}
