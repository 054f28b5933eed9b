"""What Athena's DDL does to the Glue Data Catalog, done to moto's: moto runs no DDL (beyond
CREATE DATABASE in its own Athena store), so the tests play the statements umbrellabot sent to
moto's Athena into moto's Glue — a table per CREATE, with its TBLPROPERTIES as the table's
Parameters, and ALTER TABLE ... SET TBLPROPERTIES merged into them."""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp


def play_ddl(glue: Any, sql: str) -> None:
    tree = sqlglot.parse_one(sql, read="athena")
    if isinstance(tree, exp.Create) and tree.kind in ("DATABASE", "SCHEMA"):
        name = tree.this.name
        if name not in {d["Name"] for d in glue.get_databases()["DatabaseList"]}:
            glue.create_database(DatabaseInput={"Name": name})
        return
    table = tree.find(exp.Table)
    assert table is not None, sql
    database = table.db or "default"
    if database not in {d["Name"] for d in glue.get_databases()["DatabaseList"]}:
        glue.create_database(DatabaseInput={"Name": database})  # Athena's own `default`
    values = {
        prop.this.this: prop.args["value"].this
        for prop in tree.find_all(exp.Property)
        if type(prop) is exp.Property
    }
    existing = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    if isinstance(tree, exp.Create):
        if table.name not in existing:
            glue.create_table(
                DatabaseName=database, TableInput={"Name": table.name, "Parameters": values}
            )
        return
    current = glue.get_table(DatabaseName=database, Name=table.name)["Table"]
    parameters = {**current.get("Parameters", {}), **values}
    glue.update_table(
        DatabaseName=database, TableInput={"Name": table.name, "Parameters": parameters}
    )


def executions(athena: Any) -> set[str]:
    return set(athena.list_query_executions()["QueryExecutionIds"])


def play_new_ddl(athena: Any, glue: Any, played: set[str]) -> None:
    """Play every CREATE and ALTER sent since the last call (`played`: the executions seen,
    those of other tests on the shared server included)."""
    for query_id in athena.list_query_executions()["QueryExecutionIds"]:  # in the order sent
        if query_id in played:
            continue
        played.add(query_id)
        query = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
        if query.lstrip().upper().startswith(("CREATE", "ALTER")):
            play_ddl(glue, query)
