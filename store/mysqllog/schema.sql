-- Tessera's MySQL schema (github.com/transparency-dev/tessera v1.0.4,
-- storage/mysql/schema.sql, Apache License 2.0), comments removed.
CREATE TABLE IF NOT EXISTS Tessera (
  `id`                   TINYINT UNSIGNED NOT NULL,
  `compatibilityVersion` BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (`id`)
);

INSERT IGNORE INTO Tessera (`id`, `compatibilityVersion`) VALUES (0, 1);

CREATE TABLE IF NOT EXISTS `Checkpoint` (
  `id`    TINYINT UNSIGNED NOT NULL,
  `note`  MEDIUMBLOB NOT NULL,
  `published_at` BIGINT NOT NULL,
  PRIMARY KEY(`id`)
);

CREATE TABLE IF NOT EXISTS `TreeState` (
  `id`    TINYINT UNSIGNED NOT NULL,
  `size`  BIGINT UNSIGNED NOT NULL,
  `root`  TINYBLOB NOT NULL,
  PRIMARY KEY(`id`)
);

CREATE TABLE IF NOT EXISTS `Subtree` (
  `level` TINYINT UNSIGNED NOT NULL,
  `index` BIGINT UNSIGNED NOT NULL,
  `nodes` MEDIUMBLOB NOT NULL,
  PRIMARY KEY(`level`, `index`)
);

CREATE TABLE IF NOT EXISTS `TiledLeaves` (
  `tile_index` BIGINT UNSIGNED NOT NULL,
  `size`       SMALLINT UNSIGNED NOT NULL,
  `data`       LONGBLOB NOT NULL,
  PRIMARY KEY(`tile_index`)
);
