// OmniClaw dashboard entry point (plain ES module, loaded by the desktop app).
//
// Inside the desktop app Tauri injects `window.__TAURI__` (withGlobalTauri);
// opened as a plain page (for example in a browser during tests) it is absent
// and the page still renders, showing the version as unknown.

/** The app version from the desktop shell, or null outside of it. */
export async function appVersion(tauri = window.__TAURI__) {
  if (!tauri || !tauri.app || typeof tauri.app.getVersion !== "function") {
    return null;
  }
  try {
    return await tauri.app.getVersion();
  } catch (error) {
    console.warn("OmniClaw: could not read the app version:", error);
    return null;
  }
}

async function main() {
  const version = await appVersion();
  if (version) {
    document.getElementById("version").textContent = version;
  }
}

main();
