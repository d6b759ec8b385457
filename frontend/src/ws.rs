//! The backend source's socket: opens `ws(s)://{host}/ws`, asks for a run, and hands each frame
//! to a [`StreamReceiver`]. One connection at a time; a new run closes the previous one.

use crate::source::{StreamChange, StreamReceiver};
use crate::trace_index::TraceIndex;
use leptos::prelude::{StoredValue, UpdateValue};
use shared::protocol::ClientFrame;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, MessageEvent, WebSocket};

/// Told of every change to the streamed run, with the receiver's view of it.
pub type OnChange = Rc<dyn Fn(StreamChange, &StreamReceiver)>;

/// An open socket and the callbacks that must live as long as it does.
struct Connection {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    // Every callback takes a plain `Event` (and casts it), so the page has one closure type for
    // the three instead of one per event type.
    _on_message: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
}

impl Connection {
    /// Silences the callbacks, then closes the socket.
    fn close(self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        self.socket.set_onerror(None);
        // Closing a socket that is already closing is harmless; nothing to report.
        let _ = self.socket.close();
    }
}

thread_local! {
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Closes the current connection, if any, without reporting anything.
pub fn disconnect() {
    if let Some(connection) = CONNECTION.with(|c| c.borrow_mut().take()) {
        connection.close();
    }
}

/// The socket's address: the page's own host, over `wss:` when the page came over `https:`.
fn socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = match location.protocol().ok()?.as_str() {
        "https:" => "wss:",
        _ => "ws:",
    };
    Some(format!("{scheme}//{}/ws", location.host().ok()?))
}

/// Sends `frame` on the open socket; false when there is none or it is not open.
pub fn send(frame: &ClientFrame) -> bool {
    let Ok(text) = serde_json::to_string(frame) else {
        return false;
    };
    CONNECTION.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|connection| connection.socket.send_with_str(&text).is_ok())
    })
}

/// Sends `ask` (a run, or a live run) and streams the trace that answers it into `index`,
/// calling `on_change` after every frame and when the socket fails or closes.
pub fn connect(ask: &ClientFrame, index: StoredValue<Option<TraceIndex>>, on_change: OnChange) {
    disconnect();
    let receiver = Rc::new(RefCell::new(StreamReceiver::default()));
    let fail = {
        let receiver = receiver.clone();
        let on_change = on_change.clone();
        move || {
            let change = receiver.borrow_mut().on_closed();
            on_change(change, &receiver.borrow());
        }
    };
    let Some(url) = socket_url() else {
        fail();
        return;
    };
    let socket = match WebSocket::new(&url) {
        Ok(socket) => socket,
        Err(_) => {
            fail();
            return;
        }
    };
    let frame = serde_json::to_string(ask).expect("a client frame always serializes");

    let on_open = {
        let receiver = receiver.clone();
        let socket = socket.clone();
        let fail = fail.clone();
        Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            receiver.borrow_mut().on_open();
            if socket.send_with_str(&frame).is_err() {
                fail();
            }
        })
    };
    let on_message = {
        let receiver = receiver.clone();
        let on_change = on_change.clone();
        Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            let Some(text) = event.unchecked_into::<MessageEvent>().data().as_string() else {
                return;
            };
            let change = index
                .try_update_value(|index| receiver.borrow_mut().on_text(&text, index))
                .unwrap_or(StreamChange::Failed);
            on_change(change, &receiver.borrow());
        })
    };
    // An error is always followed by a close; the close reports it.
    let on_close = Closure::<dyn FnMut(Event)>::new(move |_: Event| fail());
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    CONNECTION.with(|c| {
        *c.borrow_mut() = Some(Connection {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    });
}
