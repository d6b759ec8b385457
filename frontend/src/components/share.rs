//! Sharing and files: which views show, Copy link, the Embed snippet, exports (trace, map,
//! operation), and importing a recorded trace (a file picked or dropped, or an address).

use crate::components::{Var, attr, listen, reactive};
use crate::config::{SourceKind, View};
use crate::embed;
use crate::export;
use crate::host::current_config;
use crate::layout::Layout;
use crate::runner::show_recorded;
use crate::selection::Selection;
use crate::state::page;
use crate::view_model;
use leptos::prelude::*;
use shared::float_text::fixed;
use wasm_bindgen::JsCast;

/// The page's address without its query: what shared links and embeds point at.
fn page_base() -> String {
    let location = window().location();
    let origin = location.origin().unwrap_or_default();
    let path = location.pathname().unwrap_or_default();
    format!("{origin}{path}")
}

/// The bar of view toggles, sharing, export and import.
#[component]
pub fn ShareBar(
    /// Runs what the settings say (after an address to load is entered).
    on_run: crate::runner::Starter,
) -> impl IntoView {
    let settings = page().settings;
    let clock = page().clock;
    let run = page().run;
    let selected = page().selected;
    let views = page().views;
    // What the last action said, for the live region.
    let feedback = Var::new(String::new());
    let shared_text = Var::new(None::<(&'static str, String)>);
    let whole_state = move || current_config(settings, clock, selected, views);

    let copy = move |what: &'static str, text: String| {
        shared_text.set(Some((what, text.clone())));
        let clipboard = window().navigator().clipboard();
        let promise = clipboard.write_text(&text);
        leptos::task::spawn_local(async move {
            let message = match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(_) => format!("{what} copied."),
                Err(_) => format!("Copy the {} below (Ctrl+C).", what.to_ascii_lowercase()),
            };
            feedback.set(message);
        });
    };
    let on_copy_link = move |_| copy("Link", embed::share_link(&page_base(), &whole_state()));
    let on_embed = move |_| {
        copy(
            "Embed snippet",
            embed::iframe_snippet(&page_base(), &whole_state()),
        )
    };

    let download =
        move |file_name: String, mime: &str, body: String| match save_file(&file_name, mime, &body)
        {
            Ok(()) => feedback.set(format!("Saved {file_name}.")),
            Err(message) => feedback.set(message),
        };
    let on_export_trace = move |_| {
        let file = run.read_untracked(|index| {
            (
                format!("{}.jsonl", export::file_stem(index)),
                export::jsonl(index),
            )
        });
        match file {
            Some((name, body)) => download(name, "application/x-ndjson", body),
            None => feedback.set("There is no trace to export yet.".into()),
        }
    };
    let on_export_svg = move |_| {
        let t = clock.now.get_untracked();
        let file = run.at(t, |index, state| {
            let layout = Layout::new(index.header());
            let services = view_model::services(index.header(), state);
            (
                format!(
                    "{}-t{}s.svg",
                    export::file_stem(index),
                    fixed(t.as_secs_f64(), 3)
                ),
                export::map_svg(index, &layout, &services, t),
            )
        });
        match file {
            Some((name, body)) => download(name, "image/svg+xml", body),
            None => feedback.set("There is no map to export yet.".into()),
        }
    };
    let selected_op = move || selected.highlight.with(|h| h.op);
    let mermaid_text = Var::new(None::<String>);
    let on_export_mermaid = move |_| {
        let Some(op) = selected_op() else {
            feedback.set("Select a message or an operation first.".into());
            return;
        };
        match run.read_untracked(|index| export::mermaid(index, op)) {
            Some(Ok(text)) => {
                mermaid_text.set(Some(text.clone()));
                let stem = run
                    .read_untracked(export::file_stem)
                    .unwrap_or_else(|| "crosstalk".into());
                download(format!("{stem}-op{}.mmd", op.0), "text/plain", text);
            }
            Some(Err(message)) => feedback.set(message),
            None => feedback.set("There is no trace yet.".into()),
        }
    };

    let play_text = move |text: String, from: String| {
        settings.config.update(|c| {
            c.source = SourceKind::Recorded;
            c.trace_url = None;
            c.start_s = 0.0;
        });
        selected.selection.set(Selection::Nothing);
        show_recorded(&text, &from, settings, run, clock);
    };
    let read_file = move |file: web_sys::File| {
        let name = file.name();
        let promise = file.text();
        leptos::task::spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(text) => play_text(text.as_string().unwrap_or_default(), name),
                Err(_) => feedback.set(format!("Cannot read {name}.")),
            }
        });
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
        if let Some(file) = input.and_then(|i| i.files()).and_then(|f| f.get(0)) {
            read_file(file);
        }
    };
    let trace_address = Var::new(String::new());
    let on_load_address = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let url = trace_address.get_untracked().trim().to_string();
        if url.is_empty() {
            feedback.set("Give the address of a trace file (JSON lines).".into());
            return;
        }
        settings.config.update(|c| {
            c.source = SourceKind::Recorded;
            c.trace_url = Some(url);
            c.start_s = 0.0;
        });
        on_run.start();
    };
    accept_dropped_files(read_file);

    view! {
        <section class="share card" {attr("aria-label", "Views, sharing and files")}>
            <fieldset class="views">
                <legend>"Show"</legend>
                {View::ALL
                    .into_iter()
                    .map(|view| {
                        view! {
                            <label class="toggle">
                                <input
                                    {attr("type", "checkbox")}
                                    data-view=view.as_str()
                                    prop:checked=move || views.0.with(|v| v.shows(view))
                                    {listen::<leptos::ev::Event>("change", move |ev| {
                                        let shown = event_target_checked(&ev);
                                        views.0.update(|v| v.set(view, shown));
                                    })}
                                />
                                {view.title()}
                            </label>
                        }
                        .into_inner().into_any()
                    })
                    .map(IntoAny::into_any).collect::<Vec<AnyView>>()}
            </fieldset>
            <div class="share-actions" {attr("role", "group")} {attr("aria-label", "Share")}>
                <button {attr("id", "copy-link")} {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_copy_link)}>"Copy link"</button>
                <button {attr("id", "embed")} {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_embed)}>"Embed"</button>
            </div>
            <div class="share-actions" {attr("role", "group")} {attr("aria-label", "Export")}>
                <button {attr("id", "export-trace")} {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_export_trace)}>"Trace (JSONL)"</button>
                <button {attr("id", "export-svg")} {attr("type", "button")} {listen::<leptos::ev::MouseEvent>("click", on_export_svg)}>"Map (SVG)"</button>
                <button
                    {attr("id", "export-mermaid")}
                    {attr("type", "button")}
                    {attr("aria-disabled", reactive(move || selected_op().is_none().to_string()))}
                    {attr("title", "A Mermaid sequence diagram of the selected operation")}
                    {listen::<leptos::ev::MouseEvent>("click", on_export_mermaid)}
                >
                    "Operation (Mermaid)"
                </button>
            </div>
            <form class="import" {listen::<leptos::ev::SubmitEvent>("submit", on_load_address)} {attr("aria-label", "Play a recorded trace")}>
                <label class="file">
                    <span>"Open trace…"</span>
                    <input {attr("id", "import-file")} {attr("type", "file")} {attr("accept", ".jsonl,.ndjson,.json,.txt")} {listen::<leptos::ev::Event>("change", on_file)}/>
                </label>
                <input
                    {attr("id", "import-url")}
                    {attr("type", "url")}
                    {attr("placeholder", "or a trace's address")}
                    {attr("aria-label", "Address of a trace file")}
                    prop:value=move || trace_address.get()
                    {listen::<leptos::ev::Event>("input", move |ev| trace_address.set(event_target_value(&ev)))}
                />
                <button type="submit">"Load"</button>
            </form>
            <p {attr("id", "share-feedback")} class="feedback" {attr("aria-live", "polite")}>{move || feedback.get()}</p>
            {move || ({
                shared_text
                    .get()
                    .map(|(what, text)| {
                        view! {
                            <label class="shared-text">
                                <span class="label">{what}</span>
                                <textarea {attr("id", "shared-text")} {attr("readonly", true)} {attr("rows", "2")}>{text}</textarea>
                            </label>
                        }
                        .into_inner().into_any()
                    })
            }).into_any()}
            {move || ({
                mermaid_text
                    .get()
                    .map(|text| view! { <pre {attr("id", "mermaid")} class="mermaid-text">{text}</pre> }.into_inner().into_any())
            }).into_any()}
        </section>
    }
    .into_inner()
}

/// Offers `body` as a file download named `file_name`.
fn save_file(file_name: &str, mime: &str, body: &str) -> Result<(), String> {
    let failed = |_| format!("The browser refused to save {file_name}.");
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(body));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob =
        web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(failed)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(failed)?;
    let anchor: web_sys::HtmlAnchorElement = document()
        .create_element("a")
        .map_err(failed)?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    // The click has started the download; the object URL is no longer needed.
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Plays a trace file dropped anywhere on the page.
fn accept_dropped_files(read_file: impl Fn(web_sys::File) + Clone + 'static) {
    let over = window_event_listener(leptos::ev::dragover, |ev| {
        // Without this the browser opens the file instead of handing it to the page.
        ev.prevent_default();
    });
    let drop = window_event_listener(leptos::ev::drop, move |ev| {
        let file = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0));
        if let Some(file) = file {
            ev.prevent_default();
            read_file(file);
        }
    });
    on_cleanup(move || {
        over.remove();
        drop.remove();
    });
}
