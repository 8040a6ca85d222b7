#![no_main]
// The coverage walk's page_token: its MAC, its decoder and every counter it
// carries (issue 31: a forged 2^64-1 panicked the walk).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mfa_facade::call::walk::fuzz_cursor(data));
