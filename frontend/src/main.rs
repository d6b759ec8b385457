//! Mounts Crosstalk's page.

fn main() {
    // Debug builds print a panic's message to the console. Release builds leave the hook (and
    // the formatting it pulls in) out: a panic still stops the page with an uncaught
    // `RuntimeError` that the console and the tests see.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(frontend::app::App);
}
