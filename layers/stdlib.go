package layers

import (
	"os"
	"strings"
)

// stdlibModules are the top-level modules of Python's standard library: 3.11's
// sys.stdlib_module_names less private and platform-only ones, with the modules 3.14 added. A requirement
// with one of these names that the index does not have is a module listed by mistake.
var stdlibModules = map[string]bool{
	"abc": true, "aifc": true, "annotationlib": true, "argparse": true, "array": true, "ast": true, "asynchat": true,
	"asyncio": true, "asyncore": true, "atexit": true, "audioop": true, "base64": true, "bdb": true,
	"binascii": true, "bisect": true, "builtins": true, "bz2": true, "cProfile": true,
	"calendar": true, "cgi": true, "cgitb": true, "chunk": true, "cmath": true, "cmd": true,
	"code": true, "codecs": true, "codeop": true, "collections": true, "colorsys": true,
	"compileall": true, "compression": true, "concurrent": true, "configparser": true, "contextlib": true,
	"contextvars": true, "copy": true, "copyreg": true, "crypt": true, "csv": true, "ctypes": true,
	"curses": true, "dataclasses": true, "datetime": true, "dbm": true, "decimal": true,
	"difflib": true, "dis": true, "distutils": true, "doctest": true, "email": true, "encodings": true,
	"ensurepip": true, "enum": true, "errno": true, "faulthandler": true, "fcntl": true,
	"filecmp": true, "fileinput": true, "fnmatch": true, "fractions": true, "ftplib": true,
	"functools": true, "gc": true, "getopt": true, "getpass": true, "gettext": true, "glob": true,
	"graphlib": true, "grp": true, "gzip": true, "hashlib": true, "heapq": true, "hmac": true,
	"html": true, "http": true, "idlelib": true, "imaplib": true, "imghdr": true, "imp": true,
	"importlib": true, "inspect": true, "io": true, "ipaddress": true, "itertools": true, "json": true,
	"keyword": true, "lib2to3": true, "linecache": true, "locale": true, "logging": true, "lzma": true,
	"mailbox": true, "mailcap": true, "marshal": true, "math": true, "mimetypes": true, "mmap": true,
	"modulefinder": true, "multiprocessing": true, "netrc": true, "nis": true, "nntplib": true,
	"numbers": true, "opcode": true, "operator": true, "optparse": true, "os": true,
	"ossaudiodev": true, "pathlib": true, "pdb": true, "pickle": true, "pickletools": true,
	"pipes": true, "pkgutil": true, "platform": true, "plistlib": true, "poplib": true, "posix": true,
	"pprint": true, "profile": true, "pstats": true, "pty": true, "pwd": true, "py_compile": true,
	"pyclbr": true, "pydoc": true, "pydoc_data": true, "pyexpat": true, "queue": true, "quopri": true,
	"random": true, "re": true, "readline": true, "reprlib": true, "resource": true,
	"rlcompleter": true, "runpy": true, "sched": true, "secrets": true, "select": true,
	"selectors": true, "shelve": true, "shlex": true, "shutil": true, "signal": true, "site": true,
	"smtpd": true, "smtplib": true, "sndhdr": true, "socket": true, "socketserver": true, "spwd": true,
	"sqlite3": true, "sre_compile": true, "sre_constants": true, "sre_parse": true, "ssl": true,
	"stat": true, "statistics": true, "string": true, "stringprep": true, "struct": true,
	"subprocess": true, "sunau": true, "symtable": true, "sys": true, "sysconfig": true,
	"syslog": true, "tabnanny": true, "tarfile": true, "telnetlib": true, "tempfile": true,
	"termios": true, "textwrap": true, "threading": true, "time": true, "timeit": true,
	"tkinter": true, "token": true, "tokenize": true, "tomllib": true, "trace": true,
	"traceback": true, "tracemalloc": true, "tty": true, "turtle": true, "turtledemo": true,
	"types": true, "typing": true, "unicodedata": true, "unittest": true, "urllib": true, "uu": true,
	"uuid": true, "venv": true, "warnings": true, "wave": true, "weakref": true, "webbrowser": true,
	"wsgiref": true, "xdrlib": true, "xml": true, "xmlrpc": true, "zipapp": true, "zipfile": true,
	"zipimport": true, "zlib": true, "zoneinfo": true,
}

// stdlibRequirement is the requirement pip found no distribution for, when it is a module
// of the standard library.
func stdlibRequirement(pipOutput string) string {
	if m := noMatchRe.FindStringSubmatch(pipOutput); m != nil && stdlibModules[m[1]] {
		return m[1]
	}
	return ""
}

// stdlibLines finds, in the requirements files, the lines that name a module of the
// standard library ("base64", "json"): they are left out of an install that failed on one.
func stdlibLines(source string, files []string) (map[string][]int, error) {
	root, err := os.OpenRoot(source)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	drop := map[string][]int{}
	for _, f := range files {
		data, err := readRegular(root, f)
		if err != nil {
			return nil, err
		}
		for n, line := range strings.Split(string(data), "\n") {
			name := reqNameRe.FindString(strings.TrimSpace(line))
			if name != "" && stdlibModules[name] {
				drop[f] = append(drop[f], n+1)
			}
		}
	}
	return drop, nil
}
