package detect

import (
	"regexp"
	"strings"
)

// A start command written as one string (a Procfile line, start = "..." in pyship.toml, or
// one pyship writes) runs under /bin/sh -c, so that $PORT expands as it does on Heroku. The
// shell should not stay between the runtime and the server: a shell as PID 1 passes no
// SIGTERM on, so the server would never hear that it must stop. The shell therefore execs
// the server, but only where exec changes nothing else: in front of the last command of a
// list joined by && or ;, which runs last whatever came before. "a && b" must stay whole:
// "exec a && b" would replace the shell with a and never run b.

// shellCommand is the argv that runs line under /bin/sh -c.
func shellCommand(line string) []string {
	return []string{"/bin/sh", "-c", execLast(line)}
}

// shellList is a command line split into the simple commands of a list joined by && and
// ;. ok is false for anything else (pipes, ||, &, subshells, braces, here-documents,
// several lines), which pyship runs as it is.
type shellList struct {
	// commands are the simple commands, each as its raw words (quotes kept).
	commands [][]string
	// lastStart is the offset in the line where the last command's first word starts.
	lastStart int
	ok        bool
}

// notExecable are first words that exec cannot replace the shell with: reserved words and
// built-ins that only mean something inside the shell.
var notExecable = map[string]bool{
	"exec": true, "if": true, "then": true, "else": true, "elif": true, "fi": true, "for": true, "while": true,
	"until": true, "do": true, "done": true, "case": true, "esac": true, "{": true, "}": true, "!": true,
	"[[": true, "function": true, "cd": true, "export": true, "set": true, "unset": true, "source": true,
	".": true, "trap": true, "ulimit": true, "umask": true, "wait": true, "eval": true, "alias": true,
	"readonly": true, "local": true, "shift": true, "return": true, "exit": true, ":": true,
}

var assignmentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// execLast puts exec in front of the last simple command of line, when line is a list of
// simple commands and that command is a program.
func execLast(line string) string {
	l := splitShell(line)
	if !l.ok || len(l.commands) == 0 {
		return line
	}
	words := l.commands[len(l.commands)-1]
	name, _ := commandName(words)
	if name == "" || notExecable[name] {
		return line
	}
	prefix := "exec "
	if assignmentRe.MatchString(words[0]) {
		// "exec FOO=1 cmd" would look for a program named FOO=1; env sets the variables
		// and becomes cmd.
		prefix = "exec env "
	}
	return line[:l.lastStart] + prefix + line[l.lastStart:]
}

// commandName returns a simple command's program, unquoted, after the variable
// assignments in front of it, and the words after it. "" when there is no program.
func commandName(words []string) (string, []string) {
	for i, w := range words {
		if assignmentRe.MatchString(w) {
			continue
		}
		return unquote(w), words[i+1:]
	}
	return "", nil
}

// splitShell splits line at the && and ; that are outside quotes and substitutions.
func splitShell(line string) shellList {
	var (
		l         = shellList{ok: true}
		words     []string
		wordStart = -1
		cmdStart  = -1
		quote     byte // ' or " while inside quotes
		depth     int  // nesting of $( ... ) and ${ ... }
		backtick  bool
	)
	endWord := func(i int) {
		if wordStart >= 0 {
			words = append(words, line[wordStart:i])
			wordStart = -1
		}
	}
	endCommand := func() bool {
		if len(words) == 0 {
			return false // "&& &&", a leading ;
		}
		l.commands = append(l.commands, words)
		l.lastStart = cmdStart
		words, cmdStart = nil, -1
		return true
	}
	startWord := func(i int) {
		if wordStart < 0 {
			wordStart = i
			if cmdStart < 0 {
				cmdStart = i
			}
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
			continue
		case c == '\\':
			startWord(i)
			i++ // the next byte is literal, even inside double quotes for our purpose
			continue
		case quote == '"':
			if c == '"' {
				quote = 0
			} else if c == '$' && i+1 < len(line) && (line[i+1] == '(' || line[i+1] == '{') {
				return shellList{} // a substitution inside quotes: rare enough to leave alone
			}
			continue
		case backtick:
			if c == '`' {
				backtick = false
			}
			continue
		case depth > 0:
			switch c {
			case '(', '{':
				depth++
			case ')', '}':
				depth--
			case '\'', '"', '`':
				return shellList{}
			}
			continue
		}
		switch c {
		case '\'', '"':
			startWord(i)
			quote = c
		case '`':
			startWord(i)
			backtick = true
		case '$':
			startWord(i)
			if i+1 < len(line) && (line[i+1] == '(' || line[i+1] == '{') {
				depth++
				i++
			}
		case ' ', '\t':
			endWord(i)
		case '#':
			if wordStart >= 0 {
				continue // inside a word, # is literal
			}
			endWord(i)
			if rest := strings.TrimSpace(line[i:]); strings.Contains(rest, "\n") {
				return shellList{}
			}
			i = len(line)
		case ';':
			endWord(i)
			if !endCommand() {
				return shellList{}
			}
		case '&':
			endWord(i)
			if i+1 < len(line) && line[i+1] == '&' {
				i++
				if !endCommand() {
					return shellList{}
				}
				continue
			}
			if i > 0 && (line[i-1] == '>' || line[i-1] == '<') {
				startWord(i) // 2>&1
				continue
			}
			return shellList{} // a background job
		case '>', '<':
			if i+1 < len(line) && line[i] == '<' && line[i+1] == '<' {
				return shellList{} // a here-document
			}
			startWord(i)
		case '|', '(', ')', '\n', '\r':
			if c == '\n' && strings.TrimSpace(line[i:]) == "" {
				i = len(line)
				continue
			}
			return shellList{}
		default:
			startWord(i)
		}
	}
	if quote != 0 || depth > 0 || backtick {
		return shellList{}
	}
	endWord(len(line))
	if len(words) == 0 {
		// The line ends with a separator ("a;"), or is empty: nothing to exec.
		return shellList{commands: l.commands, ok: false}
	}
	endCommand()
	return l
}

// unquote removes the shell quoting of a word that holds no expansion: 'a b', "a", a\ b.
func unquote(w string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '\\' && i+1 < len(w):
			i++
			b.WriteByte(w[i])
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
