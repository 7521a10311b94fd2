//! How guessable a new store passphrase is: a small estimator of our own, so that `init` and
//! `passwd` can refuse the obviously weak (docs/commands-store.md#weak-passphrases).
//!
//! It counts bits the way a guesser would pay for them: each character costs log2 of the pool
//! its classes span (lower case, upper case, digits, ASCII symbols and space, anything else),
//! except that a word of [`COMMON`] costs only log2 of the list's length, a year 1900–2099
//! about 7 bits, a repeated character 1 bit, and the third and later characters of an
//! alphabet, digit or keyboard-row run 1 bit. A passphrase that is a common password once
//! the digits and symbols around it and `0`→`o`-style substitutions are taken away is weak
//! whatever it counts. Below [`MIN_BITS`] is weak.
//!
//! It is meant to catch `Password1!`, `qwertyuiop`, `Summer2024` and eight random lower-case
//! letters, not to rank strong passphrases: it overrates `Tr0ub4dor&3`-style passwords, which
//! only a large dictionary (zxcvbn's) would see through. zxcvbn was measured and not taken
//! (docs/performance.md#dependencies): it brings the whole `regex` and `fancy-regex` stack into
//! the build for this one check.

/// The least a new store passphrase must count by [`estimate`].
pub const MIN_BITS: u32 = 40;

/// Very common passwords and the words they are made of (lower case), from the public
/// most-common lists: matched as the whole passphrase (once decorations are stripped) and,
/// from five letters on, as parts of it.
pub const COMMON: &[&str] = &[
    "123123",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "111111",
    "000000",
    "654321",
    "666666",
    "696969",
    "121212",
    "112233",
    "159753",
    "147258",
    "123321",
    "abc123",
    "a1b2c3",
    "aa123456",
    "1q2w3e",
    "1q2w3e4r",
    "1qaz2wsx",
    "q1w2e3r4",
    "qazwsx",
    "zaq12wsx",
    "qwerty",
    "qwertz",
    "azerty",
    "asdf",
    "asdfgh",
    "zxcvbn",
    "qwe123",
    "password",
    "passwort",
    "passw0rd",
    "pass",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "root",
    "toor",
    "guest",
    "login",
    "user",
    "default",
    "changeme",
    "secret",
    "master",
    "access",
    "iloveyou",
    "trustno1",
    "monkey",
    "dragon",
    "shadow",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "soccer",
    "hockey",
    "basketball",
    "superman",
    "batman",
    "starwars",
    "pokemon",
    "computer",
    "internet",
    "whatever",
    "freedom",
    "hello",
    "hello123",
    "killer",
    "charlie",
    "jordan",
    "hunter",
    "ranger",
    "buster",
    "thomas",
    "tigger",
    "robert",
    "daniel",
    "michael",
    "jessica",
    "ashley",
    "michelle",
    "jennifer",
    "pepper",
    "ginger",
    "cheese",
    "maggie",
    "summer",
    "winter",
    "spring",
    "autumn",
    "monday",
    "friday",
    "january",
    "love",
    "lovely",
    "flower",
    "orange",
    "banana",
    "chocolate",
    "cookie",
    "purple",
    "silver",
    "golden",
    "diamond",
    "angel",
    "family",
    "mustang",
    "harley",
    "corvette",
    "ferrari",
    "mercedes",
    "matrix",
    "ninja",
    "zxcvbnm",
    "asdfghjkl",
    "qwertyuiop",
    "abcdef",
    "abcdefg",
    "abcd1234",
    "letmein1",
    "welcome1",
    "password1",
    "p@ssw0rd",
    "test",
    "test123",
    "testing",
    "temp",
    "demo",
    "sample",
    "example",
    "company",
    "office",
    "server",
    "client",
    "vpn",
    "openvpn",
    "easyrsa",
    "vpnca",
    "certificate",
    "private",
    "security",
    "secure",
    "correcthorsebatterystaple",
];

/// What [`estimate`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The estimated strength in bits (log2 of the guesses needed).
    pub bits: f64,
    /// Whether the passphrase, undecorated, is one of [`COMMON`].
    pub common: bool,
    /// The patterns that made it cheaper, for the message: "a common password or word", "a
    /// year", "repeated characters", "an alphabet, digit or keyboard sequence".
    pub patterns: Vec<&'static str>,
}

impl Estimate {
    /// Why the passphrase is weak, or `None` when it is not. Never contains the passphrase.
    pub fn weakness(&self) -> Option<String> {
        if self.common {
            return Some(
                "it is one of the most common passwords (with at most digits, symbols or \
                 look-alike letters added)"
                    .into(),
            );
        }
        if self.bits >= f64::from(MIN_BITS) {
            return None;
        }
        let mut why = format!(
            "it is easy to guess: about {:.0} bits by vpnca's estimate, at least {MIN_BITS} are \
             required",
            self.bits.floor()
        );
        if !self.patterns.is_empty() {
            why.push_str(&format!(" (it has {})", self.patterns.join(", ")));
        }
        why.push_str("; a few random words make a strong passphrase");
        Some(why)
    }
}

/// Keyboard rows (US layout) whose neighbouring keys make a sequence.
const ROWS: &[&str] = &["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"];

/// The look-alike substitutions undone before matching words.
fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        c => c,
    }
}

/// The step from `a` to `b` in the alphabet, digits or a keyboard row (`Some(±1)`), if they
/// are neighbours there.
fn step(a: char, b: char) -> Option<i32> {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let same_class = (a.is_ascii_lowercase() && b.is_ascii_lowercase())
        || (a.is_ascii_digit() && b.is_ascii_digit());
    if same_class {
        let d = b as i32 - a as i32;
        if d.abs() == 1 {
            return Some(d);
        }
    }
    ROWS.iter().find_map(|row| {
        let (i, j) = (row.find(a)?, row.find(b)?);
        let d = j as i32 - i as i32;
        (d.abs() == 1).then_some(d)
    })
}

/// The pool a guesser would draw each character from: the sum of the classes present.
fn pool(chars: &[char]) -> f64 {
    let has = |f: fn(&char) -> bool| chars.iter().any(f);
    let mut n = 0.0;
    if has(char::is_ascii_lowercase) {
        n += 26.0;
    }
    if has(char::is_ascii_uppercase) {
        n += 26.0;
    }
    if has(char::is_ascii_digit) {
        n += 10.0;
    }
    if has(|c| c.is_ascii_punctuation() || *c == ' ') {
        n += 33.0;
    }
    if has(|c| !c.is_ascii()) {
        n += 100.0;
    }
    f64::max(n, 2.0)
}

/// Estimates how many bits a guesser needs for `pass` (see the module documentation).
pub fn estimate(pass: &str) -> Estimate {
    let chars: Vec<char> = pass.chars().collect();
    let folded: Vec<char> = chars
        .iter()
        .map(|c| unleet(c.to_ascii_lowercase()))
        .collect();
    let per_char = pool(&chars).log2();
    let word_bits = (COMMON.len() as f64).log2();
    let mut patterns: Vec<&'static str> = Vec::new();
    let mut found = |p: &'static str| {
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    };

    // The whole passphrase, undecorated.
    let core: String = {
        let lower: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
        let start = lower.iter().position(char::is_ascii_alphabetic);
        let end = lower.iter().rposition(char::is_ascii_alphabetic);
        match (start, end) {
            (Some(s), Some(e)) => lower[s..=e].iter().map(|&c| unleet(c)).collect(),
            _ => lower.iter().collect(),
        }
    };
    let common = core.is_empty()
        || COMMON
            .iter()
            .any(|w| *w == core || w.chars().map(unleet).eq(core.chars()));

    let mut bits = 0.0;
    let mut i = 0;
    while i < chars.len() {
        // The longest common word (five letters or more) starting here.
        let word = COMMON
            .iter()
            .filter(|w| w.len() >= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
            .filter(|w| {
                let n = w.len();
                i + n <= folded.len() && w.chars().eq(folded[i..i + n].iter().copied())
            })
            .map(|w| w.len())
            .max();
        if let Some(n) = word {
            bits += word_bits;
            if chars[i..i + n].iter().any(char::is_ascii_uppercase) {
                bits += 1.0;
            }
            found("a common password or word");
            i += n;
            continue;
        }
        // A year.
        if i + 4 <= chars.len() && chars[i..i + 4].iter().all(char::is_ascii_digit) {
            let y: String = chars[i..i + 4].iter().collect();
            if y.parse::<u32>().is_ok_and(|y| (1900..2100).contains(&y)) {
                bits += 7.0;
                found("a year");
                i += 4;
                continue;
            }
        }
        let c = chars[i];
        let repeat = i > 0 && chars[i - 1].eq_ignore_ascii_case(&c);
        let run = i > 1
            && step(chars[i - 2], chars[i - 1]).is_some()
            && step(chars[i - 2], chars[i - 1]) == step(chars[i - 1], c);
        if repeat {
            bits += 1.0;
            found("repeated characters");
        } else if run {
            bits += 1.0;
            found("an alphabet, digit or keyboard sequence");
        } else {
            bits += per_char;
        }
        i += 1;
    }
    Estimate {
        bits,
        common,
        patterns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weak ones, each with the reason it must give.
    const WEAK: &[(&str, &str)] = &[
        ("PASSWORD", "most common"),
        ("Password1!", "most common"),
        ("P@ssw0rd2024", "most common"),
        ("letmein!!", "most common"),
        ("123456789012", "sequence"),
        ("!!!!!!!!", "repeated characters"),
        ("qwertyuiop", "most common"),
        ("aaaaaaaaaaaa", "repeated characters"),
        ("abcdefghijkl", "sequence"),
        ("asdfghjk1234", "sequence"),
        ("Summer2024!", "most common"),
        ("mike1987", "a year"),
        ("monkeydragon1", "common password or word"),
        ("kdjfhgqp", "bits"),
    ];

    /// Strong enough: the passphrases of the tests, scripts and docs, and random ones.
    const STRONG: &[&str] = &[
        "test-passphrase-1",
        "interop-pass-phrase-1",
        "second-passphrase-2",
        "new-passphrase-2",
        "benchmark passphrase, not a secret",
        "choose a long passphrase",
        "a long passphrase",
        "typed-on-a-tty-1",
        "new-passphrase-never-inherited",
        "ca-key-passphrase",
        "kdjfhgqpz1",
        "Xq7#mP2v",
        "plaid harbor tundra",
        "pässwörter-im-schnee",
    ];

    /// Fails when: a rule stops firing (seen with the year rule removed: `mike1987` weak for
    /// a sequence, not for its year) or fires on ordinary passphrases (seen with the threshold
    /// at 60: `kdjfhgqpz1` and others refused).
    #[test]
    fn weak_refused_with_their_reason_and_strong_accepted() {
        let mut problems = Vec::new();
        for (p, why) in WEAK {
            match estimate(p).weakness() {
                Some(w) if w.contains(why) && !w.contains(p) => {}
                other => problems.push(format!("{p:?}: {other:?}, {:?}", estimate(p))),
            }
        }
        for p in STRONG {
            if let Some(w) = estimate(p).weakness() {
                problems.push(format!("{p:?} refused: {w}"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_word_list_is_lower_case_without_duplicates() {
        let mut seen = std::collections::BTreeSet::new();
        for w in COMMON {
            assert_eq!(*w, w.to_lowercase(), "{w}");
            assert!(seen.insert(*w), "{w} twice");
        }
    }
}
