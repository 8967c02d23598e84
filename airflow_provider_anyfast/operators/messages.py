"""What the records operator says about values that are almost right.

A template always renders to a string: ``records="{{ ti.xcom_pull('load') }}"`` gives the
text of a list, which would otherwise be taken as a storage path and fail as "file not
found". These checks name what happened and the fix.
"""

from __future__ import annotations


def check_records_string(task_id: str, records: str) -> None:
    """Refuse a string that is the text of a list (a rendered XCom pull), or of nothing."""
    text = records.strip()
    if text.startswith(("[", "{")):
        raise TypeError(
            f"{task_id}: records is a string that looks like a list or dict ({text[:80]!r}...): a Jinja "
            "template always renders to text. Pass the upstream task's output itself "
            "(records=load.output, or records=load() with @task), or set render_template_as_native_obj=True "
            "on the DAG. A string is read as the URI of a JSON Lines file or folder."
        )
    if text in ("", "None"):
        raise ValueError(
            f"{task_id}: records rendered to {records!r}: the value it was templated from is empty (an XCom "
            "pull of a task that returned nothing?). Give a list of records or the URI of a JSON Lines file or folder."
        )
