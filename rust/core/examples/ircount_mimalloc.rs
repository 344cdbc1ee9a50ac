// `ircount` with mimalloc as the global allocator (as in the Python extension): compare the two
// to see the allocator's share of the cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

include!("ircount.rs");
