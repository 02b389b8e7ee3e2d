import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  OURA_DATA_TYPES, OURA_HEART_RATE_PATH, isOuraDataType, ouraCollectionPath, ouraDocumentPath, parseOuraDataType
} from '../../../src/providers/oura/documents.ts'

describe('Oura data types and API paths', () => {
  test('the bridge handles exactly the six catalog data types, in webhook spelling', () => {
    assert.deepEqual([...OURA_DATA_TYPES], ['sleep', 'daily_sleep', 'daily_readiness', 'daily_activity', 'daily_spo2', 'vo2_max'])
  })

  const paths: Array<[string, string]> = [
    ['sleep', '/v2/usercollection/sleep'],
    ['daily_sleep', '/v2/usercollection/daily_sleep'],
    ['daily_readiness', '/v2/usercollection/daily_readiness'],
    ['daily_activity', '/v2/usercollection/daily_activity'],
    ['daily_spo2', '/v2/usercollection/daily_spo2'],
    ['vo2_max', '/v2/usercollection/vO2_max']
  ]
  for (const [dataType, path] of paths) {
    test(`${dataType} is fetched from ${path}`, () => {
      assert.ok(isOuraDataType(dataType))
      assert.equal(ouraCollectionPath(dataType), path)
    })
  }

  test('a document path appends the notification object_id, escaped', () => {
    assert.equal(ouraDocumentPath('vo2_max', 'b5e8d2a7-3c9f'), '/v2/usercollection/vO2_max/b5e8d2a7-3c9f')
    assert.equal(ouraDocumentPath('sleep', '../x?y'), '/v2/usercollection/sleep/..%2Fx%3Fy')
  })

  test('heart rate is a collection path, not a webhook data type', () => {
    assert.equal(OURA_HEART_RATE_PATH, '/v2/usercollection/heartrate')
    assert.equal(isOuraDataType('heartrate'), false)
    assert.equal(parseOuraDataType('heartrate'), undefined)
  })

  test('both spellings of VO2 max parse to the webhook spelling; other names do not parse', () => {
    assert.equal(parseOuraDataType('vo2_max'), 'vo2_max')
    assert.equal(parseOuraDataType('vO2_max'), 'vo2_max')
    assert.equal(isOuraDataType('vO2_max'), false)
    for (const name of ['VO2_MAX', 'workout', 'tag', 'daily_stress', '', 'constructor', '__proto__']) {
      assert.equal(parseOuraDataType(name), undefined, name)
    }
  })
})
