"""Teach your own: this session's classes and their photos, kept in `st.session_state`.

Photos are {class id: {content hash: (name, bytes)}}, with their thumbnails and features
cached by the same hash; the callbacks here add and remove photos and classes.
"""

from __future__ import annotations

import streamlit as st

from core.catdog import teach
from core.images import ImageError


def _state():
    state = st.session_state
    state.setdefault("teach_classes", [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}])
    state.setdefault("teach_next_id", 2)
    state.setdefault("teach_photos", {})
    state.setdefault("teach_thumbs", {})
    state.setdefault("teach_cache", {})
    state.setdefault("teach_errors", [])
    state.setdefault("teach_round", {})
    return state


def add_photos(class_id: int, photos: list[tuple[str, bytes]]) -> None:
    """Checks and keeps photos for a class; a bad one gets the loader's message instead."""
    state = _state()
    for name, data in photos:
        key = teach.content_hash(data)
        try:
            state.teach_thumbs.setdefault(key, teach.thumbnail(name, data))
        except ImageError as error:
            state.teach_errors.append(str(error))
            continue
        state.teach_photos.setdefault(class_id, {})[key] = (name, data)


def _take_input(class_id: int, widget_key: str, camera: bool) -> None:
    value = st.session_state.get(widget_key)
    if camera:
        photos = (
            [(f"camera photo {len(_state().teach_photos.get(class_id, {})) + 1}", value.getvalue())] if value else []
        )
    else:
        photos = [(upload.name, upload.getvalue()) for upload in value or []]
    add_photos(class_id, photos)
    rounds = _state().teach_round
    rounds[class_id] = rounds.get(class_id, 0) + 1  # A new key: this class's uploader and camera start empty.


def _remove_photo(class_id: int, key: str) -> None:
    _state().teach_photos.get(class_id, {}).pop(key, None)


def _add_class() -> None:
    state = _state()
    state.teach_classes.append({"id": state.teach_next_id, "name": f"class {len(state.teach_classes) + 1}"})
    state.teach_next_id += 1


def _remove_class(class_id: int) -> None:
    state = _state()
    state.teach_classes = [item for item in state.teach_classes if item["id"] != class_id]
    state.teach_photos.pop(class_id, None)


def class_names() -> list[str]:
    return [st.session_state.get(f"teach_name_{item['id']}", item["name"]) for item in _state().teach_classes]
