-- The small database the sql prompts are checked against (SQLite). Written for the project:
-- conventional table and column names, so that a model that guesses them from the prompt can
-- be right. A model's query runs read-only on a fresh in-memory copy of this.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    age INTEGER NOT NULL,
    phone TEXT,
    signup_date TEXT NOT NULL
);
INSERT INTO users VALUES
    (1, 'Ada', 'ada@example.com', 36, '+44 20 7946 0001', '2021-03-14'),
    (2, 'Alan', 'alan@example.org', 41, NULL, '2021-07-02'),
    (3, 'Grace', 'grace@example.com', 29, '+1 212 555 0102', '2022-01-20'),
    (4, 'Linus', 'linus@mail.fi', 24, NULL, '2022-05-09'),
    (5, 'Barbara', 'ada@example.com', 33, '+1 617 555 0104', '2022-11-30'),
    (6, 'Edsger', 'edsger@example.nl', 52, '+31 20 555 0105', '2023-02-17'),
    (7, 'Margaret', 'margaret@example.com', 27, NULL, '2023-06-05'),
    (8, 'Annie', 'annie@mail.org', 30, '+1 202 555 0108', '2023-08-21'),
    (9, 'Ken', 'ken@example.com', 45, NULL, '2023-12-01'),
    (10, 'Radia', 'linus@mail.fi', 38, '+1 408 555 0110', '2023-12-24');

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    country TEXT NOT NULL,
    phone TEXT
);
INSERT INTO customers VALUES
    (1, 'Marie', 'Curie', 'marie@example.fr', 'France', '+33 1 55 55 01 01'),
    (2, 'Niels', 'Bohr', 'niels@example.dk', 'Denmark', NULL),
    (3, 'Lise', 'Meitner', 'lise@example.at', 'Austria', '+43 1 555 0103'),
    (4, 'Enrico', 'Fermi', 'enrico@example.it', 'Italy', '+39 06 555 0104'),
    (5, 'Irene', 'Joliot', 'irene@example.fr', 'France', NULL),
    (6, 'Max', 'Planck', 'max@example.de', 'Germany', '+49 30 555 0106'),
    (7, 'Chien-Shiung', 'Wu', 'wu@example.com', 'USA', NULL),
    (8, 'Paul', 'Dirac', 'paul@example.co.uk', 'UK', '+44 20 555 0108');

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price REAL NOT NULL,
    category TEXT NOT NULL
);
INSERT INTO products VALUES
    (1, 'Kettle', 24.5, 'kitchen'),
    (2, 'Toaster', 39.0, 'kitchen'),
    (3, 'Mug', 6.5, 'kitchen'),
    (4, 'Desk lamp', 18.0, 'office'),
    (5, 'Notebook', 3.25, 'office'),
    (6, 'Office chair', 149.0, 'office'),
    (7, 'Headphones', 79.9, 'electronics'),
    (8, 'USB cable', 8.75, 'electronics'),
    (9, 'Monitor', 229.0, 'electronics'),
    (10, 'Keyboard', 45.0, 'electronics'),
    (11, 'Backpack', 55.0, 'travel'),
    (12, 'Water bottle', 12.0, 'travel'),
    (13, 'Umbrella', 15.5, 'travel'),
    (14, 'Power bank', 32.0, 'electronics');

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    amount REAL NOT NULL,  -- quantity × the product's price
    order_date TEXT NOT NULL,
    status TEXT NOT NULL  -- shipped or returned
);
INSERT INTO orders VALUES
    (1, 1, 2, 1, 39.0, '2019-05-04', 'shipped'),
    (2, 2, 3, 4, 26.0, '2019-11-23', 'shipped'),
    (3, 1, 9, 1, 229.0, '2020-02-11', 'shipped'),
    (4, 3, 7, 1, 79.9, '2021-06-30', 'returned'),
    (5, 4, 5, 10, 32.5, '2022-01-15', 'shipped'),
    (6, 1, 8, 2, 17.5, '2022-09-08', 'shipped'),
    (7, 6, 6, 1, 149.0, '2023-03-19', 'shipped'),
    (8, 2, 10, 1, 45.0, '2023-10-02', 'returned'),
    (9, 3, 11, 1, 55.0, '2024-01-12', 'shipped'),
    (10, 1, 12, 3, 36.0, '2024-02-06', 'shipped'),
    (11, 4, 1, 1, 24.5, '2024-02-27', 'shipped'),
    (12, 6, 14, 2, 64.0, '2024-03-03', 'shipped'),
    (13, 3, 4, 1, 18.0, '2024-03-09', 'returned'),
    (14, 2, 13, 2, 31.0, '2024-03-16', 'shipped'),
    (15, 6, 9, 1, 229.0, '2024-03-22', 'shipped'),
    (16, 4, 3, 2, 13.0, '2024-03-28', 'shipped'),
    (17, 99, 2, 1, 39.0, '2024-04-02', 'shipped'),
    (18, 1, 7, 1, 79.9, '2024-04-11', 'shipped'),
    (19, 3, 5, 4, 13.0, '2024-04-19', 'shipped'),
    (20, 6, 12, 1, 12.0, '2024-04-25', 'returned');

CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    department TEXT NOT NULL,
    salary INTEGER NOT NULL,
    birth_date TEXT NOT NULL,
    manager_id INTEGER REFERENCES employees (id)
);
INSERT INTO employees VALUES
    (1, 'Hedy', 'Management', 120000, '1968-11-09', NULL),
    (2, 'Katherine', 'Engineering', 98000, '1972-08-26', 1),
    (3, 'Dorothy', 'Engineering', 87000, '1980-09-29', 2),
    (4, 'Mary', 'Engineering', 64000, '1991-04-17', 2),
    (5, 'Joan', 'Sales', 71000, '1985-01-05', 1),
    (6, 'Frances', 'Sales', 52000, '1994-06-12', 5),
    (7, 'Jean', 'Sales', 58000, '1989-12-03', 5),
    (8, 'Evelyn', 'Marketing', 66000, '1955-03-22', 1),
    (9, 'Betty', 'Marketing', 47000, '1997-10-14', 8),
    (10, 'Kathleen', 'Engineering', 91000, '1983-02-28', 3);

CREATE TABLE sales (
    id INTEGER PRIMARY KEY,
    sale_date TEXT NOT NULL,
    amount REAL NOT NULL
);
INSERT INTO sales VALUES
    (1, '2024-01-08', 120.0),
    (2, '2024-02-14', 80.5),
    (3, '2024-03-21', 200.0),
    (4, '2024-04-02', 150.25),
    (5, '2024-05-19', 99.0),
    (6, '2024-06-30', 310.0),
    (7, '2024-07-11', 45.75),
    (8, '2024-08-23', 180.0),
    (9, '2024-09-05', 260.0),
    (10, '2024-10-17', 75.0),
    (11, '2024-11-29', 410.0),
    (12, '2024-12-20', 130.5);
