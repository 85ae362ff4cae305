//! The dashboard's assistant wizard: creates a gateway (the main bot on the
//! default profile unless another is named) or gives one without a model
//! its model, from the GUI alone, one command per step of
//! `omniclaw_onboard` — the steps `omniclaw onboard` takes.
//!
//! Nothing is written before [`assistant_finish`]: the provider's answers,
//! the API key among them, live only in this process's memory
//! ([`AssistantWizard`]) until then, and [`assistant_cancel`] forgets them.
//! The optional Telegram bot is checked by the rescue wizard's own step
//! (`onboard_check_token`), whose draft finishing picks up. Model replies
//! are untrusted text: the page renders them as text.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tauri::State;

use omniclaw_onboard as onboard;
use omniclaw_onboard::{Answers, ModelAnswers, ModelInfo, ProviderDraft, ProviderKind};

use crate::desktop::{self, Desktop};
use crate::onboarding::{self, StepFailure, Wizard};

type Shared<'a> = State<'a, Arc<Desktop>>;

/// The provider the wizard asked, with what it listed and the model tested.
struct Draft {
    profile: String,
    provider: ProviderDraft,
    models: Vec<ModelInfo>,
    picked: Option<ModelInfo>,
}

/// The wizard's state between steps. Managed by Tauri.
#[derive(Default)]
pub struct AssistantWizard {
    draft: Mutex<Option<Draft>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One provider as the page offers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    kind: &'static str,
    label: &'static str,
    key_required: bool,
    key_page: Option<&'static str>,
    base_url: Option<String>,
    /// For Ollama: it runs here, with these models.
    running: Option<Vec<String>>,
}

/// Step 2's choices, the suggested one first when a local Ollama runs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OffersView {
    offers: Vec<OfferView>,
    suggested: Option<&'static str>,
}

/// The providers, with a local Ollama looked for (`OLLAMA_HOST`, else its
/// default address; at most 2 s).
#[tauri::command]
pub async fn assistant_providers() -> Result<OffersView, String> {
    // The app's own environment: the gateways' snapshot keeps only what
    // they may inherit, and `OLLAMA_HOST` is not among it.
    let host = std::env::var("OLLAMA_HOST").ok();
    let url = onboard::ollama_url(host.as_deref());
    let offers = onboard::probe_providers(&url).await;
    let suggested = onboard::ProviderOffer::suggested(&offers).map(ProviderKind::as_str);
    Ok(OffersView {
        suggested,
        offers: offers
            .into_iter()
            .map(|o| OfferView {
                kind: o.kind.as_str(),
                label: o.kind.label(),
                key_required: o.key == onboard::KeyNeed::Required,
                key_page: o.key_page,
                base_url: o.base_url,
                running: o
                    .running
                    .map(|r| r.models.into_iter().map(|m| m.id).collect()),
            })
            .collect(),
    })
}

/// One listed model.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelView {
    id: String,
    name: String,
    context_window: Option<u64>,
    /// "$1.00 / $2.00 per million tokens in / out", "free", or none.
    price: Option<String>,
}

fn price(model: &ModelInfo) -> Option<String> {
    let cost = model.cost?;
    Some(if cost.input == 0.0 && cost.output == 0.0 {
        "free".to_string()
    } else {
        format!(
            "${:.2} / ${:.2} per million tokens in / out",
            cost.input, cost.output
        )
    })
}

/// Step 3: checks the provider's answers, then fetches the models this key
/// may use (which checks the key: a refusal carries the provider's reason).
/// Nothing is written; the answers are kept in memory for the next steps.
#[tauri::command]
pub async fn assistant_models(
    wizard: State<'_, AssistantWizard>,
    name: String,
    kind: String,
    base_url: Option<String>,
    key: Option<String>,
) -> Result<Vec<ModelView>, String> {
    let kind = ProviderKind::parse(&kind).ok_or_else(|| format!("unknown provider {kind:?}"))?;
    let provider = ProviderDraft::new(kind, None, base_url.as_deref(), None, key)
        .map_err(|e| e.to_string())?;
    let models = onboard::list_models(&provider)
        .await
        .map_err(|e| e.to_string())?;
    let view = models
        .iter()
        .map(|m| ModelView {
            id: m.id.clone(),
            name: m.name.clone(),
            context_window: m.context_window,
            price: price(m),
        })
        .collect();
    *guard(&wizard.draft) = Some(Draft {
        profile: name,
        provider,
        models,
        picked: None,
    });
    Ok(view)
}

/// The model's answer to the test message, as the page shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestView {
    model: String,
    /// Untrusted: the page shows it as text.
    text: String,
    input_tokens: u64,
    output_tokens: u64,
    cost: String,
    elapsed_ms: u64,
}

/// Step 4: picks `model` among those fetched and sends it the test message;
/// the reply and what it cost come back.
#[tauri::command]
pub async fn assistant_test(
    wizard: State<'_, AssistantWizard>,
    model: String,
) -> Result<TestView, String> {
    let (provider, picked) = {
        let draft = guard(&wizard.draft);
        let d = draft.as_ref().ok_or("fetch the provider's models first")?;
        let picked =
            onboard::pick_model(&d.provider, &d.models, &model).map_err(|e| e.to_string())?;
        (d.provider.clone(), picked)
    };
    let reply = onboard::test_message(&provider, &picked)
        .await
        .map_err(|e| e.to_string())?;
    let view = TestView {
        model: format!("{}/{}", provider.id, picked.id),
        text: reply.text,
        input_tokens: reply.input_tokens,
        output_tokens: reply.output_tokens,
        cost: reply
            .cost_usd
            .map_or("price unknown".to_string(), |usd| format!("${usd:.4}")),
        elapsed_ms: u64::try_from(reply.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    if let Some(d) = guard(&wizard.draft).as_mut() {
        if d.provider == provider {
            d.picked = Some(picked);
        }
    }
    Ok(view)
}

/// Forgets every answer (the key too). Nothing was written.
#[tauri::command]
pub fn assistant_cancel(wizard: State<'_, AssistantWizard>, rescue: State<'_, Wizard>) {
    guard(&wizard.draft).take();
    onboarding::forget(&rescue);
}

/// A green finish.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DoneView {
    profile: String,
    port: u16,
    model: String,
    store: String,
    bot: Option<String>,
}

/// Step 5: writes everything with onboarding's all-or-nothing rules (the
/// key and tokens into the secret store — the profile's private file when
/// `secrets_file`, offered after the keychain refused them —, the config,
/// the marker), starts
/// the gateway in the app (restarts it when it ran there; one run by a
/// service or a terminal applies the file itself, and the wizard waits
/// until it serves it) and waits for its health. A refusal names the reason; a failed write left nothing.
#[tauri::command]
pub async fn assistant_finish(
    desktop: Shared<'_>,
    wizard: State<'_, AssistantWizard>,
    rescue: State<'_, Wizard>,
    name: String,
    port: Option<u16>,
    secrets_file: Option<bool>,
    operators: Option<String>,
) -> Result<DoneView, StepFailure> {
    let file = secrets_file.unwrap_or(false);
    // The bot's operators (who may approve and operate), checked as the
    // CLI's onboarding checks a user id, before anything is written.
    let allow_from = omniclaw_core::rescue::parse_user_ids(operators.as_deref().unwrap_or(""))
        .map_err(|e| StepFailure::from(format!("Operators: {e}")))?;
    let mut telegram = onboarding::telegram_draft(&rescue, &name);
    if !allow_from.is_empty() {
        let bot = telegram.as_mut().ok_or_else(|| {
            "Operators are the Telegram bot's: check its token first, or leave Operators empty"
                .to_string()
        })?;
        bot.allow_from = allow_from;
    }
    let resolved = desktop::resolve(desktop.env(), Some(&name))
        .map_err(|e| StepFailure::from(e.to_string()))?;
    let model = {
        let draft = guard(&wizard.draft);
        let d = draft
            .as_ref()
            .filter(|d| d.profile == name)
            .ok_or_else(|| format!("choose the model of profile {name} first"))?;
        let picked = d
            .picked
            .clone()
            .ok_or_else(|| "send the test message to the chosen model first".to_string())?;
        ModelAnswers {
            provider: d.provider.clone(),
            model: picked,
        }
    };
    let model_ref = model.model_ref();
    let answers = Answers {
        port,
        telegram,
        model: Some(model),
    };
    let env = desktop.env().clone();
    let for_write = resolved.clone();
    let written = tauri::async_runtime::spawn_blocking(move || {
        onboard::write(&for_write, &env, &onboarding::store_for(file), &answers)
    })
    .await
    .map_err(|e| format!("writing the profile did not finish: {e}"))?
    .map_err(|e| onboarding::write_failure(&e, file, &resolved, &name))?;
    // Written: the store holds the secrets, so the wizard forgets its copy.
    guard(&wizard.draft).take();
    onboarding::forget(&rescue);
    desktop.changed.notify_one();

    // A gateway run outside the app (a service, a terminal) applies the
    // written file by itself: it is waited for, never started twice.
    let elsewhere = desktop.runs_elsewhere(&name);
    if !elsewhere {
        onboarding::start(desktop.inner(), &name, false).await?;
    }
    let env = desktop.env().clone();
    let config_path = resolved.config_path.clone();
    let endpoint = tauri::async_runtime::spawn_blocking(move || {
        onboard::endpoint(&resolved, &env, &onboarding::store_for(false))
    })
    .await
    .map_err(|e| format!("reading the gateway's address did not finish: {e}"))??;
    if elsewhere {
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| format!("cannot read {} back: {e}", config_path.display()))?;
        onboard::wait_applied(
            &endpoint,
            &omniclaw_core::config::hash(&text),
            onboard::HEALTH_WAIT,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let healthy = onboard::wait_healthy(&endpoint, onboard::HEALTH_WAIT)
        .await
        .map_err(|e| e.to_string())?;
    desktop.changed.notify_one();
    Ok(DoneView {
        profile: name,
        port: written.base,
        model: model_ref,
        store: written.store,
        bot: healthy.bot,
    })
}
