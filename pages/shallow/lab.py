"""Shallow-net lab: set neurons, dropout and activation, and watch the article's network learn live.

The projector layout (always in presentation mode, a switch otherwise) puts the essential
settings, Start and the live curves side by side on the first screen of a 1280 x 720
projector, with the explanations, the article's presets and the other settings one click away.
"""

from dataclasses import asdict

import streamlit as st

from core.device import describe_device
from core.shallow.calibration import Calibration, calibrate_in_subprocess, speed_key
from core.shallow.config import TrainingConfig, check_affordable, format_duration
from pages._shared import asset_text, is_presentation
from pages.shallow import form, jobs, live, queue_view, settings
from pages.shallow.picture import try_your_picture
from pages.shallow.replay import replay_panel
from pages.shallow.results import show_results
from pages.shallow.runs import saved_runs

st.title("Shallow-net lab")
projector = is_presentation() or st.toggle(
    "Projector layout", key="sn_projector", help="Settings, Start and the live curves on one screen."
)
if projector:
    with st.expander("About this lab, and why the article's network is (almost) linear"):
        st.markdown(asset_text("shallow_nets_intro.md"))
        st.markdown(asset_text("shallow_nets.md"))
else:
    st.markdown(asset_text("shallow_nets_intro.md"))
    with st.expander("What the article's network is, and why it is (almost) linear"):
        st.markdown(asset_text("shallow_nets.md"))

train_tab, runs_tab = st.tabs(["Train", "Saved runs"], key="sn_tab", on_change="rerun")


@st.cache_data(max_entries=256, show_spinner="Timing a few batches on this machine (once per setting)...")
def timed(speed_settings: dict) -> dict:
    """A few real batches of the engine that would train these settings, timed in a short-lived process."""
    return asdict(calibrate_in_subprocess(TrainingConfig.from_dict(speed_settings)))


def estimate_panel(config, has_gpu: bool, compact: bool = False) -> bool:
    """Parameters, memory and time on this machine before anything runs; False when refused."""
    try:
        cost = check_affordable(config, has_gpu)
    except ValueError as error:
        st.error(str(error))
        return False
    try:
        seconds, how = Calibration(**timed(speed_key(config).to_dict())).seconds_per_epoch(config), "timed"
    except RuntimeError as error:
        seconds, how = cost.seconds_per_epoch, f"a first guess ({error})"
    if compact:  # One line: four large numbers do not fit beside the live panel.
        st.caption(
            f"**{cost.params:,}** parameters · **{cost.memory_bytes / 2**30:.2f} GiB** · "
            f"**{format_duration(seconds)}** per epoch, whole run at most "
            f"**{format_duration(seconds * config.epochs)}** ({cost.engine})"
        )
        return True
    columns = st.columns(4)
    columns[0].metric("Parameters", f"{cost.params:,}")
    columns[1].metric(
        "Memory", f"{cost.memory_bytes / 2**30:.2f} GiB", help=f"{cost.memory_available / 2**30:.1f} GiB free"
    )
    columns[2].metric("Per epoch (estimate)", format_duration(seconds))
    columns[3].metric("Whole run, at most", format_duration(seconds * config.epochs))
    device = describe_device()
    where = ", ".join(device.gpus) if has_gpu else f"the CPU ({device.cpu_cores} cores, {device.cpu_model})"
    st.caption(
        f"Trains on {where} with the **{cost.engine}** engine. The estimate is "
        + ("timed on a few real batches of that engine here, once per setting" if how == "timed" else how)
        + "; the live panel measures the real speed as it trains. Early stopping may end the run sooner."
    )
    return True


with train_tab:
    if train_tab.open is not False:
        settings.restore()
        for problem in st.session_state.pop("sn_link_problems", []):
            st.warning(problem)
        left, right = st.columns([2, 3]) if projector else (st.container(), st.container())
        with left:
            if not projector:
                with st.expander("Start from one of the article's results", expanded=True):
                    settings.presets()
            # In the projector layout Start and the estimate come first, above the settings they use.
            top = st.container() if projector else None
            has_gpu = bool(describe_device().gpus)
            config = form.settings_form(has_gpu, compact=projector)
            with top or st.container():
                affordable = config is not None and estimate_panel(config, has_gpu, compact=projector)
                start, demo = st.columns([3, 2] if projector else [1, 3])
                with start:
                    jobs.start_controls(config, affordable)
                demo.button(
                    "Demo" if projector else "Quick demo: 5,000 images, 20 epochs",
                    on_click=settings.quick_demo,
                    help="Keeps the network, trains it on a subset of 5,000 images for 20 epochs.",
                )
            if config is not None:
                settings.sync_url(config)
        with right:
            job = jobs.followed_job()
            if job is not None:
                live.live_panel(job, compact=projector)
            elif projector:
                st.info("Press **Start training**: the live curves appear here.", icon=":material/show_chart:")
        queue_view.server_jobs()
        if projector:
            with st.expander("Start from one of the article's results"):
                settings.presets()
        if job is not None:
            progress = job.snapshot()
            if progress.evaluation:
                st.subheader("Results on the 10,000 test images")
                show_results(progress.evaluation, job.config.to_dict(), prefix="sn_job")
            model_path = jobs.run_store().model_path_for(progress.run_id) if progress.run_id else None
            if progress.done and model_path and model_path.is_file():  # Written whole, then renamed.
                try_your_picture(job.config.to_dict(), model_path, prefix="sn_job")
        replay_panel()

with runs_tab:
    if runs_tab.open:
        saved_runs()
