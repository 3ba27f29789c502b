//! Link settings for the `berth` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The migrations are embedded (sqlx::migrate!): a changed or new one
    // must rebuild the library, which "rerun-if-changed=build.rs" alone
    // would prevent.
    println!("cargo:rerun-if-changed=migrations");
    // Packed relative relocations (DT_RELR): the table the dynamic loader
    // reads on every start shrinks from about 1 MiB to 12 KiB, and with it
    // the memory an idle server keeps resident. GNU ld 2.38 and glibc 2.36
    // (Debian 12) and later support it.
    if std::env::var("TARGET").is_ok_and(|t| t.ends_with("-linux-gnu")) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
