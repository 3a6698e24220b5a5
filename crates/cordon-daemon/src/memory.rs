//! The daemon's heap: large allocations mapped on their own
//! ([`configure`]), and freed heap memory given back to the system after
//! the daemon's large, rare passes (a whole install, a whole reconcile): at 10,000 containers
//! they allocate and free tens of megabytes of set elements, and glibc's
//! allocator keeps the freed pages in the process (its resident size)
//! until told otherwise. Not done on the per-container element updates,
//! which allocate little and must stay fast.

/// The allocator's threshold above which an allocation gets pages of its
/// own: 128 KiB, glibc's starting value, held fixed.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Sets the allocator up for the daemon: large allocations (the compiled
/// sets' element vectors, netlink batches, dumps) are mapped on their own
/// and unmapped when freed. glibc otherwise raises its threshold after the
/// first such free, and the next generation of megabyte-sized vectors is
/// carved from the main heap among small long-lived allocations, where
/// freeing it leaves holes no trim can return: measured at 10,000
/// containers, 96 MB resident after the first sync with the moving
/// threshold, 64 MB with it fixed, the same afterwards. Call once at start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter under the
    // allocator's own lock; a refused value (0) leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Returns the heap's free memory to the system (`malloc_trim(0)`); a
/// no-op where the allocator is not glibc's.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's heap; it
    // takes the allocator's own locks and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
