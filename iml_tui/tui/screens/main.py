"""The labelling screen: spectrogram, prediction, status panels; keys drive the session.

Every answer is committed by the session (SQLite journal) inside the key handler, before the next
item is drawn. Retraining runs in a thread worker; its progress and result come back as messages,
so a key press never waits for training.

Event extents: ``[`` at the cursor starts an event, ``]`` ends it (marked at once in the
journal, its class ticked); a mouse drag on the spectrogram marks one, a click moves the cursor;
``x`` deletes the event under the cursor (else the last), ``{`` / ``}`` move its edges, ``u``
undoes the last act, extents included. The class is the one last ticked by its key (else the
lowest ticked, else the first class). The cursor is the playback position while playing, else
where it was clicked, nudged (left / right) or paused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from iml_tui.errors import UserError
from iml_tui.tui.bridge import Bridge, Shown
from iml_tui.tui.keys import screen_bindings
from iml_tui.tui.messages import AudioChanged, ItemShown, RetrainFinished, RetrainProgress
from iml_tui.tui.priority import run_in_background_thread
from iml_tui.tui.protocols import ExtentLike, PlayerLike, RetrainJobLike
from iml_tui.tui.views import ModelView
from iml_tui.tui.widgets.curve import LearningCurve
from iml_tui.tui.widgets.prediction import PredictionPanel
from iml_tui.tui.widgets.spectrogram import CLASS_COLOURS, Mark, SpectrogramView
from iml_tui.tui.widgets.status import ModelStatus, PlayerLine, ProgressPanel, WhyLine

CURSOR_HZ = 10
EXTENT_ACTIONS = frozenset(
    {"mark_onset", "mark_offset", "delete_event", "move_edge", "nudge_cursor"}
)
NUDGE_STEPS = 50  # left / right move the cursor by 1/50 of the clip


class MainScreen(Screen[None]):
    """Shows one item at a time and turns key presses into session calls."""

    BINDINGS = screen_bindings()

    def __init__(
        self,
        bridge: Bridge,
        player: PlayerLike,
        autoplay: bool = True,
        cursor: bool = True,
        graphics: str = "halfblock",
    ) -> None:
        super().__init__()
        self.graphics = graphics
        self.bridge = bridge
        self.player = player
        self.autoplay = autoplay
        self.poll_cursor = cursor
        self.current: Shown | None = None
        self.shown_at = time.monotonic()
        self.shown_seq = 0
        self.training_version: int | None = None
        self.model_view = ModelView()
        self._paused_at: float | None = None
        self._playing = False
        self._cursor: float | None = None  # clicked, nudged or paused at (s)
        self.pending_onset: float | None = None
        self.mark_class: int | None = None

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Spectrogram and player on the left; prediction, progress, model on the right."""
        yield WhyLine(id="why")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield SpectrogramView(id="spec", graphics=self.graphics)
                yield Static(id="events")
                yield Static(id="notice")
                yield PlayerLine(id="player")
            with Vertical(id="right"):
                yield PredictionPanel(id="prediction")
                yield ProgressPanel(id="progress")
                yield ModelStatus(id="model")
                yield LearningCurve(id="curve", score_name=self.bridge.score_name)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Configure the panels, show the first item, start the cursor clock."""
        keys = self.app_keys()
        self.query_one(PredictionPanel).configure(
            self.bridge.class_list, self.bridge.multi_label, keys
        )
        self.refresh_status()
        self.show_next()
        self.maybe_retrain()
        if self.poll_cursor:
            self.set_interval(1 / CURSOR_HZ, self.tick_cursor)
            # the player's own state changes too (a browser tab connects or goes away)
            self.set_interval(1.0, self.update_player_line)

    def app_keys(self) -> list[str]:
        """The first key of each class binding, after the user's keymap."""
        keymap = getattr(self.app, "keymap", {})
        out = []
        for i in range(len(self.bridge.class_list)):
            keys = keymap.get(f"label.class_{i + 1}", str(i + 1) if i < 9 else " ")
            out.append(keys.split(",")[0])
        return out

    # --- showing items ------------------------------------------------------------------

    def show_next(self) -> None:
        """Ask the session for the next item and draw it (or the waiting / done notice)."""
        found: list[Shown | None] = []
        # on failure nothing is on screen (never the item just answered); Enter asks again
        self.display_item(
            found[0] if self.saved(lambda: found.append(self.bridge.next())) else None
        )

    def display_item(self, shown: Shown | None) -> None:
        """Draw ``shown`` (None: nothing to ask now), start its audio, then report it drawn."""
        self.stop_audio()
        self.current = shown
        self._cursor = self._paused_at = self.pending_onset = self.mark_class = None
        spec = self.query_one(SpectrogramView)
        pred = self.query_one(PredictionPanel)
        why = self.query_one(WhyLine)
        notice = self.query_one("#notice", Static)
        spec.display = shown is not None and shown.spectrogram is not None
        if shown is None:
            spec.set_data(None)
            pred.show(None)
            pred.selected = frozenset()
            why.show("", "", "query")
            notice.update(self.bridge.waiting_reason())
            notice.display = True
        else:
            view = shown.view
            spec.set_data(shown.spectrogram)
            pred.selected = view.preset
            pred.show(view.probs, view.confidence, view.threshold)
            why.show(view.name or view.item_id, view.why, view.kind)
            notice.display = bool(shown.audio_error)
            notice.update(f"No audio for this item: {shown.audio_error}")
            if self.autoplay:
                self.play_audio(0.0)
        self.refresh_extents()
        self.shown_at = time.monotonic()
        self.shown_seq += 1
        self.refresh_status()
        seq = self.shown_seq
        item_id = None if shown is None else shown.view.item_id
        self.call_after_refresh(self.post_message, ItemShown(item_id, seq))

    def refresh_current(self) -> None:
        """The item on screen seen by the model just installed: new probabilities and reason,
        the same audio (not restarted) and the classes already ticked kept."""
        if self.current is None:
            return
        fresh = self.bridge.next()
        if fresh is None or fresh.view.item_id != self.current.view.item_id:
            return
        pred = self.query_one(PredictionPanel)
        ticked = pred.selected
        self.current = fresh
        view = fresh.view
        self.query_one(SpectrogramView).set_data(fresh.spectrogram)
        pred.show(view.probs, view.confidence, view.threshold)
        pred.selected = ticked
        self.refresh_extents()
        self.query_one(WhyLine).show(view.name or view.item_id, view.why, view.kind)

    def refresh_status(self) -> None:
        """Progress, model status, learning curve and the player line, from the session."""
        self.query_one(ProgressPanel).progress = self.bridge.progress()
        model = self.bridge.model()
        if self.training_version is not None and model.training is None:
            model = ModelView(
                model.version,
                model.score,
                model.score_name,
                self.model_view.training,
                self.model_view.training_note,
                model.error,
                model.curve,
            )
        self.set_model_view(model)
        self.query_one(LearningCurve).set_points(model.curve)
        self.update_player_line()

    @on(AudioChanged)
    def on_audio_changed(self) -> None:
        """The audio thread played or stopped something."""
        self.update_player_line()

    def set_model_view(self, model: ModelView) -> None:
        """Show ``model`` in the status line."""
        self.model_view = model
        self.query_one(ModelStatus).model = model

    def update_player_line(self) -> None:
        """The backend's name and description, and whether it plays."""
        self.query_one(PlayerLine).show(
            self.player.name, self.player.describe(), self._playing, self.autoplay
        )

    # --- audio --------------------------------------------------------------------------

    def play_audio(self, start: float) -> None:
        """Play the current clip from ``start`` seconds."""
        shown = self.current
        if shown is None or shown.audio_error:
            return
        x, sr = shown.audio
        self._paused_at = None
        self.player.play(x, sr, shown.view.name or shown.view.item_id, start=max(0.0, start))
        self._playing = True
        self.update_player_line()

    def stop_audio(self) -> None:
        """Stop playback (if any) and hide the cursor."""
        if self._playing:
            self.player.stop()
        self._playing = False
        self.query_one(SpectrogramView).cursor = None

    def tick_cursor(self) -> None:
        """Move the playback cursor to the player's position."""
        if not self._playing:
            return
        pos = self.player.position()
        spec = self.query_one(SpectrogramView)
        if pos is None:
            self._playing = False
            spec.cursor = None
            self.update_player_line()
        else:
            spec.cursor = self._cursor = pos  # marking keys act here after playback ends

    # --- actions (keys) -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Class keys exist only for the project's classes; event keys only in pool mode."""
        if action == "toggle_class":
            index = parameters[0] if parameters else 0
            return isinstance(index, int) and index < len(self.bridge.class_list)
        if action in EXTENT_ACTIONS:  # events are marked in pool clips
            return self.bridge.mode == "pool"
        return True

    def action_toggle_class(self, index: int) -> None:
        """Tick / untick a class (multi-label) or pick it (single-label)."""
        if self.current is None:
            return
        pred = self.query_one(PredictionPanel)
        if self.bridge.multi_label:
            pred.selected = pred.selected ^ {index}
        else:
            pred.selected = frozenset() if pred.selected == {index} else frozenset({index})
        if index in pred.selected:
            self.mark_class = index

    def action_none(self) -> None:
        """None of the classes."""
        self.query_one(PredictionPanel).selected = frozenset()

    def action_submit(self) -> None:
        """Commit the label, then show the next item."""
        shown = self.current
        if shown is None:
            self.maybe_retrain()
            self.show_next()
            return
        labels = sorted(self.query_one(PredictionPanel).selected)
        if not self.saved(
            lambda: self.bridge.submit(shown.item, labels, time.monotonic() - self.shown_at)
        ):
            return
        self.maybe_retrain()
        self.show_next()

    def action_skip(self) -> None:
        """Skip the current item."""
        shown = self.current
        if shown is None:
            self.app.bell()
            return
        if self.saved(lambda: self.bridge.skip(shown.item, time.monotonic() - self.shown_at)):
            self.show_next()

    def action_search(self) -> None:
        """Queue the pool clips most like the one on screen, to be asked right after it."""
        shown = self.current
        if shown is None:
            self.app.bell()
            return
        found: list[int] = []
        try:
            if not self.saved(lambda: found.append(self.bridge.search(shown.item))):
                return
        except ValueError as exc:
            self.notify(str(exc), severity="warning", timeout=4)
            return
        n = found[0]
        self.refresh_status()
        if not n:
            self.notify("no unlabelled clip left to queue", timeout=5)
            return
        self.notify(f"{n} clips like this one are asked next", timeout=5)
        from iml_tui.tui.screens.search import SearchScreen

        self.app.push_screen(SearchScreen(shown.view.item_id, self.bridge.search_queue()))

    def saved(self, write: Callable[[], object]) -> bool:
        """Run a journal write; on failure (full disk, locked or damaged journal) say why on
        screen and keep the item and its ticks, so the same key retries. Whether it was saved."""
        try:
            write()
        except (UserError, OSError, sqlite3.Error) as exc:
            self.notify(
                f"not saved: {exc}. Your answer is still on screen: fix the cause and "
                "press the key again.",
                severity="error",
                timeout=15,
            )
            self.app.bell()
            return False
        return True

    def action_undo(self) -> None:
        """Withdraw the last answer and show its item again, unanswered (old answer as a hint)."""
        found: list[Shown | None] = []
        if not self.saved(lambda: found.append(self.bridge.undo())):
            return
        back = found[0]
        if back is None:
            self.notify("nothing to undo", severity="warning", timeout=3)
            return
        cur = self.current
        if cur is not None and back.view.item_id == cur.view.item_id:
            # an event marked, moved or deleted on the clip on screen: ticks and audio stay
            self.pending_onset = None
            self.refresh_extents()
            self.notify("undone: the last event change", timeout=3)
            return
        self.display_item(back)
        hint = self.bridge.previous_text(back.item)
        if hint is not None:
            self.notify(f"undone; your answer was: {hint}", timeout=6)

    # --- event extents ------------------------------------------------------------------

    def refresh_extents(self) -> None:
        """Draw the current clip's events on the spectrogram and list them under it."""
        spec = self.query_one(SpectrogramView)
        box = self.query_one("#events", Static)
        shown = self.current
        marks = [] if shown is None else self.bridge.extents(shown.item)
        spec.set_marks([Mark(x.id, x.onset, x.offset, x.cls) for x in marks], self.pending_onset)
        text = Text()
        if self.pending_onset is not None:
            text.append(
                f"onset at {self.pending_onset:.2f} s, ] ends it, Esc drops it  ", style="bold"
            )
        for k, x in enumerate(marks):
            if k:
                text.append(" · ")
            name = self.bridge.class_list[x.cls] if x.cls < len(self.bridge.class_list) else "?"
            text.append(name, style=CLASS_COLOURS[x.cls % len(CLASS_COLOURS)])
            text.append(f" {x.onset:.2f}–{x.offset:.2f} s")
        box.update(text)
        box.display = bool(text.plain)

    def cursor_time(self) -> float:
        """Where marking keys act (s): the playback position, else the clicked / nudged /
        paused cursor, else the clip's start."""
        pos = self.player.position() if self._playing else None
        if pos is not None:
            return float(pos)
        return float(self._cursor or 0.0)

    def _duration(self) -> float:
        shown = self.current
        if shown is None or shown.spectrogram is None:
            return 0.0
        return float(shown.spectrogram.duration)

    def set_cursor(self, t: float) -> None:
        """Put the cursor at ``t`` s (playing: playback jumps there)."""
        t = min(max(t, 0.0), self._duration())
        self._cursor = t
        if self._playing:
            self.play_audio(t)
        else:
            self._paused_at = t
        self.query_one(SpectrogramView).cursor = t

    def marking_class(self) -> int:
        """The class a new event gets: the last ticked by its key, else the lowest ticked."""
        ticked = self.query_one(PredictionPanel).selected
        if self.mark_class is not None and self.mark_class in ticked:
            return self.mark_class
        return min(ticked) if ticked else 0

    def _tick(self, cls: int) -> None:
        pred = self.query_one(PredictionPanel)
        pred.selected = pred.selected | {cls} if self.bridge.multi_label else frozenset({cls})

    def mark_event(self, onset: float, offset: float) -> bool:
        """Mark [onset, offset) s with the marking class, tick it; whether it was saved."""
        shown = self.current
        if shown is None:
            return False
        lo, hi = sorted((onset, offset))
        hi = min(hi, self._duration() or hi)
        if hi - lo <= 0:
            self.notify("an event needs an offset after its onset", severity="warning", timeout=3)
            return False
        cls = self.marking_class()
        seconds = time.monotonic() - self.shown_at
        if not self.saved(lambda: self.bridge.add_extent(shown.item, lo, hi, cls, seconds)):
            return False
        self.pending_onset = None
        self._tick(cls)
        self.refresh_extents()
        return True

    def target_extent(self) -> ExtentLike | None:
        """The event under the cursor (the last marked of those), else the last marked."""
        shown = self.current
        if shown is None:
            return None
        marks = self.bridge.extents(shown.item)
        t = self.cursor_time()
        under = [x for x in marks if x.onset <= t < x.offset]
        pool = under or marks
        return max(pool, key=lambda x: x.id) if pool else None

    def action_mark_onset(self) -> None:
        """An event starts at the cursor."""
        if self.current is None:
            self.app.bell()
            return
        self.pending_onset = self.cursor_time()
        self.refresh_extents()

    def action_cancel_onset(self) -> None:
        """Drop the onset pressed with [ (nothing is marked)."""
        if self.pending_onset is None:
            return
        self.pending_onset = None
        self.refresh_extents()
        self.notify("onset dropped", timeout=2)

    def action_mark_offset(self) -> None:
        """The event started with [ ends at the cursor: mark it."""
        if self.current is None or self.pending_onset is None:
            self.notify("press [ at the event's onset first", severity="warning", timeout=3)
            return
        self.mark_event(self.pending_onset, self.cursor_time())

    def action_delete_event(self) -> None:
        """Delete the event under the cursor, else the last one marked."""
        shown, target = self.current, self.target_extent()
        if shown is None or target is None:
            self.app.bell()
            return
        if self.saved(lambda: self.bridge.remove_extent(shown.item, target.id)):
            self.refresh_extents()

    def action_move_edge(self, which: str) -> None:
        """Move the onset or offset of the event under the cursor (else the last) there."""
        shown, target = self.current, self.target_extent()
        if shown is None or target is None:
            self.app.bell()
            return
        t = self.cursor_time()
        lo, hi = (t, target.offset) if which == "onset" else (target.onset, t)
        self.move_extent(target.id, lo, hi)

    def action_event_class(self) -> None:
        """Give the event under the cursor (else the last one) the marking class."""
        shown, target = self.current, self.target_extent()
        if shown is None or target is None:
            self.app.bell()
            return
        cls = self.marking_class()
        if cls == target.cls:
            self.notify("the event already has that class: press its digit first", timeout=3)
            return

        def change() -> None:
            self.bridge.move_extent(shown.item, target.id, target.onset, target.offset, cls)

        if self.saved(change):
            self._tick(cls)
            self.refresh_extents()

    def move_extent(self, extent_id: int, onset: float, offset: float) -> None:
        """Give an event of the clip on screen new bounds (refused when they cross)."""
        shown = self.current
        if shown is None:
            return
        if offset <= onset:
            self.notify("an event needs an offset after its onset", severity="warning", timeout=3)
            return
        if self.saved(lambda: self.bridge.move_extent(shown.item, extent_id, onset, offset)):
            self.refresh_extents()

    def action_nudge_cursor(self, steps: int) -> None:
        """Move the cursor by ``steps`` x 1/50 of the clip."""
        if self.current is None:
            return
        self.set_cursor(self.cursor_time() + steps * self._duration() / NUDGE_STEPS)

    @on(SpectrogramView.Clicked)
    def on_spectrogram_clicked(self, message: SpectrogramView.Clicked) -> None:
        """A click moves the cursor there."""
        self.set_cursor(message.time)

    @on(SpectrogramView.Dragged)
    def on_spectrogram_dragged(self, message: SpectrogramView.Dragged) -> None:
        """A drag marks an event over the columns it covered (pool clips)."""
        if self.bridge.mode == "pool":
            self.mark_event(message.onset, message.offset)

    @on(SpectrogramView.ExtentMoved)
    def on_spectrogram_extent_moved(self, message: SpectrogramView.ExtentMoved) -> None:
        """A drag from an event's edge moves that edge, from inside it on the events row the
        whole event (pool clips)."""
        if self.bridge.mode == "pool":
            self.move_extent(message.mark_id, message.onset, message.offset)

    def action_play_pause(self) -> None:
        """Pause when playing, resume (or start) otherwise."""
        if self._playing:
            pos = self.player.position()
            self.stop_audio()
            self._paused_at = pos
            if pos is not None:
                self._cursor = pos
                self.query_one(SpectrogramView).cursor = pos
            self.update_player_line()
        else:
            self.play_audio(self._paused_at or 0.0)

    def action_replay(self) -> None:
        """Play the current clip from its start."""
        self.stop_audio()
        self.play_audio(0.0)

    def action_help(self) -> None:
        """Show the help screen."""
        from iml_tui.tui.screens.help import HelpScreen

        self.app.push_screen(
            HelpScreen(
                self.bridge.class_list, getattr(self.app, "keymap", {}), self.bridge.multi_label
            )
        )

    def action_quit(self) -> None:
        """Stop audio and leave (answers are already committed)."""
        self.stop_audio()
        self.app.exit()

    # --- background retraining -----------------------------------------------------------

    def maybe_retrain(self) -> None:
        """Start a training run when the session wants one and none is running; while one runs
        and the queue is empty, let the session queue the next round with the model it has."""
        if self.training_version is None and self.bridge.retrain_due():
            job = self.bridge.start_retrain()
            if job is not None:
                self.training_version = job.base_version + 1
                self.set_model_view(
                    ModelView(
                        self.model_view.version,
                        self.model_view.score,
                        self.model_view.score_name,
                        0.0,
                        "starting",
                        "",
                        self.model_view.curve,
                    )
                )
                self.retrain(job)
        filled: list[bool] = []
        if (
            self.training_version is not None
            and self.saved(lambda: filled.append(self.bridge.fill_while_training()))
            and filled[0]
            and self.current is None
        ):
            self.show_next()

    @work(thread=True, exclusive=True, exit_on_error=False, group="retrain", name="retrain")
    def retrain(self, job: RetrainJobLike[object]) -> None:
        """Run ``job`` off the UI thread at low priority, streaming progress; the result comes
        back as a message."""
        worker = get_current_worker()
        version = job.base_version + 1

        def progress(fraction: float, note: str) -> None:
            self.post_message(RetrainProgress(version, fraction, note))

        result = run_in_background_thread(
            lambda: job.run(progress, lambda: worker.is_cancelled), name="iml-tui-retrain"
        )
        if not worker.is_cancelled:
            self.post_message(RetrainFinished(version, result))

    @on(RetrainProgress)
    def on_retrain_progress(self, message: RetrainProgress) -> None:
        """Show the training progress."""
        if message.version != self.training_version:
            return
        m = self.model_view
        self.set_model_view(
            ModelView(
                m.version,
                m.score,
                m.score_name,
                min(max(message.fraction, 0.0), 1.0),
                message.note,
                "",
                m.curve,
            )
        )

    @on(RetrainFinished)
    def on_retrain_finished(self, message: RetrainFinished) -> None:
        """Swap the new model in (atomically, in the session) and carry on."""
        self.training_version = None
        try:
            ok, error = self.bridge.swap(message.result)
        except (UserError, OSError, sqlite3.Error) as exc:
            ok, error = False, f"the new model could not be recorded: {exc}"
        if ok and self.current is not None:
            self.refresh_current()
        self.refresh_status()
        if not ok and error:
            self.show_training_error(error)
        if self.current is None:
            self.show_next()
        if ok or not error:  # a stale result: train on the labels as they are now
            self.maybe_retrain()  # a failed one is retried on the next answer (or Enter)

    def show_training_error(self, error: str) -> None:
        """A failed training: say so; the previous model stays in use."""
        m = self.bridge.model()
        self.set_model_view(ModelView(m.version, m.score, m.score_name, None, "", error, m.curve))
        self.notify(
            f"training failed, the previous model stays: {error}", severity="error", timeout=8
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface: the session goes on with the previous model."""
        if event.worker.group == "retrain" and event.state is WorkerState.ERROR:
            self.training_version = None
            self.show_training_error(str(event.worker.error))
            if self.current is None:
                self.display_item(None)
