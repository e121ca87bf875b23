"""Shallow-net lab: set neurons, dropout and activation, and watch the article's network learn live.

The projector layout (always in presentation mode, a switch otherwise) puts the essential
settings, Start and the live curves side by side on the first screen of a 1280 x 720
projector, with the explanations, the article's presets and the other settings one click away.
"""

import streamlit as st

from core.device import describe_device
from core.shallow.config import check_affordable, format_duration
from pages._shared import asset_text, is_presentation
from pages.shallow import jobs, settings
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


def estimate_panel(config, has_gpu: bool, compact: bool = False) -> bool:
    """Parameters, memory and time on this machine before anything runs; False when refused."""
    try:
        cost = check_affordable(config, has_gpu)
    except ValueError as error:
        st.error(str(error))
        return False
    if compact:  # One line: four large numbers do not fit beside the live panel.
        st.caption(
            f"**{cost.params:,}** parameters · **{cost.memory_bytes / 2**30:.2f} GiB** · "
            f"**{format_duration(cost.seconds_per_epoch)}** per epoch, whole run at most "
            f"**{format_duration(cost.seconds_per_epoch * config.epochs)}** ({cost.engine})"
        )
        return True
    columns = st.columns(4)
    columns[0].metric("Parameters", f"{cost.params:,}")
    columns[1].metric(
        "Memory", f"{cost.memory_bytes / 2**30:.2f} GiB", help=f"{cost.memory_available / 2**30:.1f} GiB free"
    )
    columns[2].metric("Per epoch (estimate)", format_duration(cost.seconds_per_epoch))
    columns[3].metric("Whole run, at most", format_duration(cost.seconds_per_epoch * config.epochs))
    device = describe_device()
    where = ", ".join(device.gpus) if has_gpu else f"the CPU ({device.cpu_cores} cores, {device.cpu_model})"
    st.caption(
        f"Trains on {where} with the **{cost.engine}** engine. The estimate is a first guess; the live panel "
        "measures the real speed from the first batches. Early stopping may end the run sooner."
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
            config = settings.settings_form(has_gpu, compact=projector)
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
                jobs.live_panel(job, compact=projector)
            elif projector:
                st.info("Press **Start training**: the live curves appear here.", icon=":material/show_chart:")
        jobs.server_jobs()
        if projector:
            with st.expander("Start from one of the article's results"):
                settings.presets()
        if job is not None:
            progress = job.snapshot()
            if progress.evaluation:
                st.subheader("Results on the 10,000 test images")
                show_results(progress.evaluation, job.config.to_dict(), prefix="sn_job")

with runs_tab:
    if runs_tab.open:
        saved_runs()
