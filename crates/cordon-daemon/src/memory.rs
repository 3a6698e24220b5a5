//! Giving freed heap memory back to the system after the daemon's large,
//! rare passes (a whole install, a whole reconcile): at 10,000 containers
//! they allocate and free tens of megabytes of set elements, and glibc's
//! allocator keeps the freed pages in the process (its resident size)
//! until told otherwise. Not done on the per-container element updates,
//! which allocate little and must stay fast.

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
