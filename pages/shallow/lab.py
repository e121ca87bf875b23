"""Shallow-net lab: set neurons, dropout and activation, and watch the article's network learn live.

The projector layout (always in presentation mode, a switch otherwise) puts the essential
settings, Start and the live curves side by side on the first screen of a 1280 x 720
projector, with the explanations, the article's presets and the other settings one click away.
"""

import streamlit as st

from core.device import describe_device
from core.shallow.calibration import BackgroundTimer, Calibration
from core.shallow.config import check_affordable, format_duration
from pages._shared import asset_text, is_presentation
from pages.shallow import form, jobs, live, queue_view, settings
from pages.shallow.picture import trained_network
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


@st.cache_resource
def timer() -> BackgroundTimer:
    """The server's one estimate timer: a few real batches of each setting, off the page script."""
    return BackgroundTimer()


def estimate_panel(config, has_gpu: bool, compact: bool = False) -> bool:
    """Parameters, memory and time on this machine before anything runs; False when refused.

    The time is a first guess until the timer has run a few real batches of this setting
    (seconds, once per setting for the server); the panel then redraws itself with it.
    """
    try:
        cost = check_affordable(config, has_gpu)
    except ValueError as error:
        st.error(str(error))
        return False
    waiting = timer().result(config) is None

    @st.fragment(run_every=1.0 if waiting else None)
    def numbers() -> None:
        timed = timer().result(config)
        if waiting and timed is not None:
            st.rerun()  # Once, to draw the timed numbers without the timer.
        if isinstance(timed, Calibration):
            seconds, how = (
                timed.seconds_per_epoch(config),
                "timed on a few real batches of that engine here, once per setting",
            )
        else:
            seconds = cost.seconds_per_epoch
            how = f"a first guess ({timed})" if timed else "a first guess while a few real batches are timed here"
        show_estimate(cost, seconds, how, config.epochs, has_gpu, compact)

    numbers()
    return True


def show_estimate(cost, seconds: float, how: str, epochs: int, has_gpu: bool, compact: bool) -> None:
    if compact:  # One line: four large numbers do not fit beside the live panel.
        st.caption(
            f"**{cost.params:,}** parameters · **{cost.memory_bytes / 2**30:.2f} GiB** · "
            f"**{format_duration(seconds)}** per epoch, whole run at most "
            f"**{format_duration(seconds * epochs)}** ({cost.engine})"
        )
        return
    columns = st.columns(4)
    columns[0].metric("Parameters", f"{cost.params:,}")
    columns[1].metric(
        "Memory", f"{cost.memory_bytes / 2**30:.2f} GiB", help=f"{cost.memory_available / 2**30:.1f} GiB free"
    )
    columns[2].metric("Per epoch (estimate)", format_duration(seconds))
    columns[3].metric("Whole run, at most", format_duration(seconds * epochs))
    device = describe_device()
    where = ", ".join(device.gpus) if has_gpu else f"the CPU ({device.cpu_cores} cores, {device.cpu_model})"
    st.caption(
        f"Trains on {where} with the **{cost.engine}** engine. The estimate is {how}; "
        "the live panel measures the real speed as it trains. Early stopping may end the run sooner."
    )


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
            if progress.done and progress.run_id is not None:
                model_path = jobs.run_store().model_path_for(progress.run_id)
                trained_network(job.config.to_dict(), model_path, "sn_job", progress.evaluation)
        replay_panel()

with runs_tab:
    if runs_tab.open:
        saved_runs()
