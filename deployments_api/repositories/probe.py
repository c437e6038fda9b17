from sqlalchemy import text


class DatabaseProbe:
    def __init__(self, session):
        self.session = session

    def ping(self) -> bool:
        with self.session.begin():
            return self.session.execute(text("SELECT 1")).scalar() == 1
