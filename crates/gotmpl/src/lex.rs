//! The lexer: template text to tokens, with Go's rules for delimiters, trim markers
//! (`{{- ` and ` -}}`: the dash must touch the delimiter and be followed or preceded by
//! a space, so `{{-3}}` stays the number -3), comments and literals.
//!
//! It lexes eagerly into a vector; an error becomes an `Error` token followed by `Eof`,
//! which the parser meets in the same order Go's lazy lexer would hand it over.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Error,
    Bool,
    Char,
    CharConstant,
    Comment,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords (Go prints these as `<word>` in errors).
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl Tok {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            Tok::Block
                | Tok::Break
                | Tok::Continue
                | Tok::Dot
                | Tok::Define
                | Tok::Else
                | Tok::End
                | Tok::If
                | Tok::Nil
                | Tok::Range
                | Tok::Template
                | Tok::With
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub kind: Tok,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Token {
    /// Go's rendering of a token inside parse errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Tok::Eof => f.write_str("EOF"),
            Tok::Error => f.write_str(&self.val),
            k if k.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", crate::fmt::quote(&head, false))
            }
            _ => f.write_str(&crate::fmt::quote(&self.val, false)),
        }
    }
}

pub(crate) struct LexOptions {
    pub break_ok: bool,
    pub continue_ok: bool,
    pub emit_comment: bool,
}

const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    // Go: '_' or unicode.IsLetter or unicode.IsDigit. Rust's classes are close
    // (exact for ASCII); is_numeric is wider than Go's Nd, so restrict digits.
    c == '_' || c.is_alphabetic() || c.is_ascii_digit() || (c.is_numeric() && !c.is_ascii())
}

fn has_left_trim(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space(s[1])
}

fn has_right_trim(s: &[u8]) -> bool {
    s.len() >= 2 && is_space(s[0]) && s[1] == b'-'
}

struct Lexer<'a> {
    input: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    start: usize,
    paren_depth: usize,
    opts: &'a LexOptions,
    out: Vec<Token>,
    line_starts: Vec<usize>,
}

/// Lexes the whole input. The last token is always `Eof` (after an `Error`, if any).
pub(crate) fn lex(input: &str, left: &str, right: &str, opts: &LexOptions) -> Vec<Token> {
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    let mut line_starts = vec![0];
    line_starts.extend(
        input
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i + 1),
    );
    let mut l = Lexer {
        input,
        left,
        right,
        pos: 0,
        start: 0,
        paren_depth: 0,
        opts,
        out: Vec::new(),
        line_starts,
    };
    l.run();
    l.out
}

impl Lexer<'_> {
    fn line_of(&self, pos: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= pos)
    }

    fn bytes(&self) -> &[u8] {
        self.input.as_bytes()
    }

    fn emit(&mut self, kind: Tok) {
        let val = self.input[self.start..self.pos].to_string();
        let line = self.line_of(self.start);
        self.out.push(Token {
            kind,
            pos: self.start,
            val,
            line,
        });
        self.start = self.pos;
    }

    /// Records an error token; lexing stops there.
    fn error(&mut self, msg: String) -> bool {
        let line = self.line_of(self.start);
        self.out.push(Token {
            kind: Tok::Error,
            pos: self.start,
            val: msg,
            line,
        });
        false
    }

    fn peek_char(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn run(&mut self) {
        let mut inside = false;
        loop {
            let ok = if inside {
                self.lex_inside(&mut inside)
            } else {
                self.lex_text(&mut inside)
            };
            if !ok {
                break;
            }
            if matches!(self.out.last(), Some(t) if t.kind == Tok::Eof) {
                return;
            }
        }
        let end = self.input.len();
        let line = self.line_of(end);
        self.out.push(Token {
            kind: Tok::Eof,
            pos: end,
            val: "EOF".into(),
            line,
        });
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.bytes()[self.pos..];
        if has_right_trim(rest) && rest[2..].starts_with(self.right.as_bytes()) {
            return (true, true);
        }
        (rest.starts_with(self.right.as_bytes()), false)
    }

    fn lex_text(&mut self, inside: &mut bool) -> bool {
        match self.input[self.pos..].find(self.left) {
            Some(x) => {
                if x > 0 {
                    self.pos += x;
                    let delim_end = self.pos + self.left.len();
                    let mut text_end = self.pos;
                    if has_left_trim(&self.bytes()[delim_end..]) {
                        let text = &self.input[self.start..self.pos];
                        text_end =
                            self.start + text.trim_end_matches([' ', '\t', '\r', '\n']).len();
                    }
                    if text_end > self.start {
                        let saved = self.pos;
                        self.pos = text_end;
                        self.emit(Tok::Text);
                        self.pos = saved;
                    }
                    self.start = self.pos;
                }
                self.lex_left_delim(inside)
            }
            None => {
                self.pos = self.input.len();
                if self.pos > self.start {
                    self.emit(Tok::Text);
                }
                self.emit(Tok::Eof);
                true
            }
        }
    }

    fn lex_left_delim(&mut self, inside: &mut bool) -> bool {
        self.pos += self.left.len();
        let trim = has_left_trim(&self.bytes()[self.pos..]);
        let after = if trim { 2 } else { 0 };
        if self.input[self.pos + after..].starts_with(LEFT_COMMENT) {
            self.pos += after;
            self.start = self.pos;
            return self.lex_comment();
        }
        self.emit(Tok::LeftDelim);
        self.pos += after;
        self.start = self.pos;
        self.paren_depth = 0;
        *inside = true;
        true
    }

    fn lex_comment(&mut self) -> bool {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.input[self.pos..].find(RIGHT_COMMENT) else {
            return self.error("unclosed comment".into());
        };
        self.pos += x + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.error("comment ends before closing delimiter".into());
        }
        if self.opts.emit_comment {
            // Comments are only kept when asked (Go's ParseComments mode).
            let val = self.input[self.start..self.pos].to_string();
            let line = self.line_of(self.start);
            self.out.push(Token {
                kind: Tok::Comment,
                pos: self.start,
                val,
                line,
            });
        }
        if trim {
            self.pos += 2;
        }
        self.pos += self.right.len();
        if trim {
            self.skip_leading_space();
        }
        self.start = self.pos;
        true
    }

    fn skip_leading_space(&mut self) {
        while self.pos < self.input.len() && is_space(self.bytes()[self.pos]) {
            self.pos += 1;
        }
    }

    fn lex_right_delim(&mut self, inside: &mut bool) -> bool {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += self.right.len();
        self.emit(Tok::RightDelim);
        if trim {
            self.skip_leading_space();
            self.start = self.pos;
        }
        *inside = false;
        true
    }

    fn lex_inside(&mut self, inside: &mut bool) -> bool {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return self.lex_right_delim(inside);
            }
            return self.error("unclosed left paren".into());
        }
        let Some(c) = self.next_char() else {
            return self.error("unclosed action".into());
        };
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                self.pos -= 1;
                self.lex_space(inside)
            }
            '=' => {
                self.emit(Tok::Assign);
                true
            }
            ':' => {
                if self.next_char() != Some('=') {
                    return self.error("expected :=".into());
                }
                self.emit(Tok::Declare);
                true
            }
            '|' => {
                self.emit(Tok::Pipe);
                true
            }
            '"' => self.lex_quote(),
            '`' => self.lex_raw_quote(),
            '$' => self.lex_variable(),
            '\'' => self.lex_char(),
            '.' => {
                if let Some(&b) = self.bytes().get(self.pos)
                    && !b.is_ascii_digit()
                {
                    return self.lex_field_or_variable(Tok::Field);
                }
                self.pos -= 1;
                self.lex_number()
            }
            '+' | '-' | '0'..='9' => {
                self.pos -= 1;
                self.lex_number()
            }
            '(' => {
                self.paren_depth += 1;
                self.emit(Tok::LeftParen);
                true
            }
            ')' => {
                if self.paren_depth == 0 {
                    return self.error("unexpected right paren".into());
                }
                self.paren_depth -= 1;
                self.emit(Tok::RightParen);
                true
            }
            c if is_alnum(c) => {
                self.pos -= c.len_utf8();
                self.lex_identifier()
            }
            c if c.is_ascii() && !c.is_ascii_control() => {
                self.emit(Tok::Char);
                true
            }
            c => self.error(format!(
                "unrecognized character in action: {}",
                crate::fmt::sharp_u(c)
            )),
        }
    }

    fn lex_space(&mut self, inside: &mut bool) -> bool {
        let mut n = 0;
        while self.pos < self.input.len() && is_space(self.bytes()[self.pos]) {
            self.pos += 1;
            n += 1;
        }
        // A trim-marked right delimiter starts with a space: leave it for the delimiter.
        let before = &self.bytes()[self.pos - 1..];
        if has_right_trim(before) && before[2..].starts_with(self.right.as_bytes()) {
            self.pos -= 1;
            if n == 1 {
                return self.lex_right_delim(inside);
            }
        }
        self.emit(Tok::Space);
        true
    }

    fn at_terminator(&self) -> bool {
        match self.peek_char() {
            None => true,
            Some(c) if c.is_ascii() && is_space(c as u8) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.input[self.pos..].starts_with(self.right),
        }
    }

    fn lex_identifier(&mut self) -> bool {
        while let Some(c) = self.peek_char() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or('\u{fffd}');
            return self.error(format!("bad character {}", crate::fmt::sharp_u(c)));
        }
        let word = &self.input[self.start..self.pos];
        let kind = match word {
            "block" => Tok::Block,
            "break" if self.opts.break_ok => Tok::Break,
            "continue" if self.opts.continue_ok => Tok::Continue,
            "define" => Tok::Define,
            "else" => Tok::Else,
            "end" => Tok::End,
            "if" => Tok::If,
            "range" => Tok::Range,
            "nil" => Tok::Nil,
            "template" => Tok::Template,
            "with" => Tok::With,
            "true" | "false" => Tok::Bool,
            _ => Tok::Identifier,
        };
        self.emit(kind);
        true
    }

    fn lex_variable(&mut self) -> bool {
        if self.at_terminator() {
            self.emit(Tok::Variable);
            return true;
        }
        self.lex_field_or_variable(Tok::Variable)
    }

    fn lex_field_or_variable(&mut self, kind: Tok) -> bool {
        if self.at_terminator() {
            self.emit(if kind == Tok::Variable {
                Tok::Variable
            } else {
                Tok::Dot
            });
            return true;
        }
        let mut last = None;
        while let Some(c) = self.peek_char() {
            if !is_alnum(c) {
                last = Some(c);
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let c = last.unwrap_or('\u{fffd}');
            return self.error(format!("bad character {}", crate::fmt::sharp_u(c)));
        }
        self.emit(kind);
        true
    }

    fn lex_char(&mut self) -> bool {
        loop {
            match self.next_char() {
                Some('\\') => match self.next_char() {
                    Some('\n') | None => {
                        return self.error("unterminated character constant".into());
                    }
                    _ => {}
                },
                Some('\n') | None => return self.error("unterminated character constant".into()),
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(Tok::CharConstant);
        true
    }

    fn lex_number(&mut self) -> bool {
        if !self.scan_number() {
            let msg = format!(
                "bad number syntax: {}",
                crate::fmt::quote(&self.input[self.start..self.pos], false)
            );
            return self.error(msg);
        }
        if matches!(self.peek_char(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let msg = format!(
                    "bad number syntax: {}",
                    crate::fmt::quote(&self.input[self.start..self.pos], false)
                );
                return self.error(msg);
            }
            self.emit(Tok::Complex);
            return true;
        }
        self.emit(Tok::Number);
        true
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek_char() {
            Some(c) if set.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek_char()
            && is_alnum(c)
        {
            self.pos += c.len_utf8();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> bool {
        loop {
            match self.next_char() {
                Some('\\') => match self.next_char() {
                    Some('\n') | None => return self.error("unterminated quoted string".into()),
                    _ => {}
                },
                Some('\n') | None => return self.error("unterminated quoted string".into()),
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(Tok::String);
        true
    }

    fn lex_raw_quote(&mut self) -> bool {
        loop {
            match self.next_char() {
                None => return self.error("unterminated raw quoted string".into()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(Tok::RawString);
        true
    }
}
