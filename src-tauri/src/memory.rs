//! Keeping the tray app small while it sits in the tray.
//!
//! Two costs dominate a tray-only process on Linux, and neither buys the
//! user anything while no window is open:
//! - GTK probes OpenGL when it opens the display, to choose visuals for GL
//!   windows. That loads the Mesa driver and, with it, LLVM (about 50 MB
//!   resident with a software renderer). The dashboard's web view does its
//!   own GL set-up when it is opened, so the probe at start is switched off
//!   (`GDK_GL=disable`) unless the user set `GDK_GL` themselves.
//! - A closed dashboard leaves freed heap pages with the allocator; they go
//!   back to the system when the window is destroyed (`malloc_trim`).

/// Switches off GTK's OpenGL probe at start. Call first thing in `main`,
/// before any thread exists (the environment is process-wide).
pub fn lean_start() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
}

/// Hands freed heap memory back to the system (after the dashboard closed).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // the allocator's locks; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}
