//! A label matcher's regex (`PromRegex::new`) must never panic and must stay bounded whatever the
//! text: compiling is refused with a message, or yields a PostgreSQL translation within its size
//! bound that is anchored and holds no NUL, and a matcher that runs on any value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhookfast_core::promregex::{PromRegex, MAX_POSTGRES_BYTES};

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a pattern and a value to match.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(rest.len());
    let (Ok(pattern), value) = (
        std::str::from_utf8(&rest[..at]),
        String::from_utf8_lossy(&rest[at..]),
    ) else {
        return;
    };
    match PromRegex::new(pattern) {
        Err(err) => assert!(
            !err.message.is_empty() && err.message.len() < 300,
            "{err:?}"
        ),
        Ok(re) => {
            let pg = re.postgres();
            assert!(pg.len() <= MAX_POSTGRES_BYTES);
            assert!(pg.starts_with('^') && pg.ends_with('$'), "{pg}");
            assert!(!pg.contains('\0'));
            let _ = re.is_match(&value);
            let _ = re.is_match(pattern);
            let _ = re.is_match("");
        }
    }
});
